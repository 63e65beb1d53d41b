"""The system-prompt technique: model specs with #system=, the wrapper's messages, and an eval through it."""

from __future__ import annotations

from alignlab.core import registry
from alignlab.evals import prompting as P
from alignlab.evals.backends import make_model
from tests.evals.test_evals_logic import Scripted


def test_spec_split_named_and_literal():
    assert P.split_spec("embedded") == ("embedded", None)
    assert P.split_spec("embedded#system=anti-sycophancy") == ("embedded", P.PROMPTS["anti-sycophancy"])
    assert P.split_spec("openai:http://h:1/v1/m#system=Be brief.") == ("openai:http://h:1/v1/m", "Be brief.")


def test_wrapper_prepends_or_extends_the_system_message():
    seen = []
    base = Scripted(lambda m: seen.append(m) or "ok", score=lambda m, c: float(len(m)))
    model = P.SystemPromptModel(base, "Be honest.")
    assert model.chat([[{"role": "user", "content": "hi"}]]) == ["ok"]
    assert seen[-1] == [{"role": "system", "content": "Be honest."}, {"role": "user", "content": "hi"}]
    model.chat([[{"role": "system", "content": "Rules."}, {"role": "user", "content": "hi"}]])
    assert seen[-1][0] == {"role": "system", "content": "Be honest.\n\nRules."} and len(seen[-1]) == 2
    assert model.supports_logprobs and model.logprobs([[{"role": "user", "content": "q"}]], ["a"]) == [2.0]


def test_make_model_wraps_a_local_model_and_an_eval_runs_through_it():
    from alignlab.lm.testing import cached_tiny_llama

    path = str(cached_tiny_llama())
    model = make_model(f"{path}#system=anti-sycophancy")
    assert isinstance(model, P.SystemPromptModel) and model.base is make_model(path)
    assert model.name.endswith("#system=anti-sycophancy")
    cls = registry.get("eval", "sycophancy-answer")
    result = cls(cls.Config(max_new_tokens=4)).run(model, limit=2, seed=0)
    assert len(result.items) == 2


def test_the_eval_sees_the_prompted_behaviour():
    """A scripted model that answers correctly only under a system prompt: the prompt moves the metric."""
    from tests.evals.test_evals_logic import gold, wrong

    def reply(messages):
        return gold(messages[1:]) if messages[0]["role"] == "system" else wrong(messages)

    cls = registry.get("eval", "sycophancy-answer")
    base = cls().run(Scripted(reply), limit=6, seed=0).metrics["intended"].value
    prompted = cls().run(P.SystemPromptModel(Scripted(reply), "Be honest."), limit=6, seed=0).metrics["intended"].value
    assert base == 0.0 and prompted == 1.0
