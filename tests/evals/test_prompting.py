"""The system prompt: the model-spec grammar (`BASE#SPEC...`, the `#system=` shorthand), the wrapper's
messages (chat, logprobs, generate, render), and an eval through it."""

from __future__ import annotations

import pytest

from alignlab.core import registry
from alignlab.core.errors import ConfigError
from alignlab.evals import prompting as P
from alignlab.evals.backends import make_model, model_spec_techniques, split_model_spec
from tests.evals.test_evals_logic import Scripted


def test_spec_grammar_splits_the_base_from_its_techniques():
    assert split_model_spec("embedded") == ("embedded", [])
    assert split_model_spec("embedded#system=anti-sycophancy") == ("embedded", ["system=anti-sycophancy"])
    endpoint = "openai:http://h:1/v1/m"
    assert split_model_spec(f"{endpoint}#system=Be brief.") == (endpoint, ["system=Be brief."])
    # the shorthand runs to the end, '#' and all; a general spec's '#' inside parentheses stays in it
    assert split_model_spec("embedded#system=Item #1 (first)#x") == ("embedded", ["system=Item #1 (first)#x"])
    assert split_model_spec("e#system-prompt(prompt=a#b)#system-prompt") == ("e", ["system-prompt(prompt=a#b)",
                                                                                  "system-prompt"])


def test_shorthand_means_the_system_prompt_technique():
    base, [(short, label)] = model_spec_techniques("embedded#system=anti-sycophancy")
    _, [(general, _)] = model_spec_techniques("embedded#system-prompt(prompt=anti-sycophancy)")
    assert base == "embedded" and label == "system=anti-sycophancy"
    assert short.registered_name == general.registered_name == "system-prompt-v0" and short.spec == general.spec
    assert short.text == general.text == P.PROMPTS["anti-sycophancy"]
    _, [(literal, _)] = model_spec_techniques("m#system=Be #1, brief (really).")
    assert literal.text == "Be #1, brief (really)."


@pytest.mark.parametrize("spec, message", [
    ("embedded#no-such-thing", "'no-such-thing' is not a registered chat-model technique; valid: "),
    ("embedded#quantilizer(q=0.1)", "acts on the 'optimizer' slot, not on a chat model; valid: "),
    ("embedded#", "empty technique after '#'"),
    ("embedded#system=", "prompt must be non-empty"),
    ("embedded#system-prompt(tone=x)", "unknown config key 'tone' for technique system-prompt-v0; valid keys: prompt"),
])
def test_bad_techniques_are_one_line_config_errors(spec, message):
    with pytest.raises(ConfigError, match="model spec") as err:
        make_model(spec)  # checked before any model is loaded
    assert message in str(err.value) and "\n" not in str(err.value)


def test_wrapper_prepends_or_extends_the_system_message():
    seen = []
    base = Scripted(lambda m: seen.append(m) or "ok", score=lambda m, c: float(len(m)))
    model = P.SystemPromptModel(base, "Be honest.")
    assert model.chat([[{"role": "user", "content": "hi"}]]) == ["ok"]
    assert seen[-1] == [{"role": "system", "content": "Be honest."}, {"role": "user", "content": "hi"}]
    model.chat([[{"role": "system", "content": "Rules."}, {"role": "user", "content": "hi"}]])
    assert seen[-1][0] == {"role": "system", "content": "Be honest.\n\nRules."} and len(seen[-1]) == 2
    assert model.supports_logprobs and model.logprobs([[{"role": "user", "content": "q"}]], ["a"]) == [2.0]
    assert not hasattr(model, "generate") and not hasattr(model, "render")  # the base has neither


def test_wrapper_generate_and_render_carry_the_system_prompt():
    """The server and the Inspect provider call `generate` where a model has it: it must not bypass the prompt."""

    class WithGenerate(Scripted):
        def generate(self, messages_batch, max_new_tokens=64, temperature=0.0, seed=0):
            return [("gen", list(m)) for m in messages_batch]

        def render(self, messages, add_generation_prompt=True):
            return "|".join(m["content"] for m in messages)

    model = P.SystemPromptModel(WithGenerate(lambda m: "ok"), "Be honest.")
    [(_, msgs)] = model.generate([[{"role": "user", "content": "hi"}]], max_new_tokens=3)
    assert msgs[0] == {"role": "system", "content": "Be honest."}
    assert model.render([{"role": "user", "content": "hi"}]) == "Be honest.|hi"


def test_make_model_wraps_a_local_model_and_an_eval_runs_through_it():
    from alignlab.lm.testing import cached_tiny_llama

    path = str(cached_tiny_llama())
    for suffix in ("system=anti-sycophancy", "system-prompt(prompt=anti-sycophancy)", "system-prompt"):
        model = make_model(f"{path}#{suffix}")
        assert isinstance(model, P.SystemPromptModel) and model.base is make_model(path)
        assert model.name.endswith(f"#{suffix}") and model.system == P.PROMPTS["anti-sycophancy"]
    stacked = make_model(f"{path}#system-prompt(prompt=helpful)#system=Be brief.")
    assert stacked.system == "Be brief." and stacked.base.system == P.PROMPTS["helpful"]
    assert stacked.base.base is make_model(path)
    cls = registry.get("eval", "sycophancy-answer")
    result = cls(cls.Config(max_new_tokens=4)).run(model, limit=2, seed=0)
    assert len(result.items) == 2


def test_the_eval_sees_the_prompted_behaviour():
    """A scripted model that answers correctly only under a system prompt: the prompt moves the metric."""
    from tests.evals.test_evals_logic import gold, wrong

    def reply(messages):
        return gold(messages[1:]) if messages[0]["role"] == "system" else wrong(messages)

    cls = registry.get("eval", "sycophancy-answer")
    tech = registry.get("technique", "system-prompt")()
    base = cls().run(Scripted(reply), limit=6, seed=0).metrics["intended"].value
    prompted = cls().run(tech.apply(Scripted(reply)), limit=6, seed=0).metrics["intended"].value
    assert base == 0.0 and prompted == 1.0
