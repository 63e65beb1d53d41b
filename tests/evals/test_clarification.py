"""The clarification eval: its detector on written replies, and its metrics against scripted models."""

from __future__ import annotations

import pytest

from alignlab.core import registry
from alignlab.core.errors import ConfigError
from alignlab.evals.clarification import ClarificationConfig, asks
from alignlab.evals.core import load_dataset

AMBIGUOUS = {s.question for s in load_dataset("clarification")}


class Scripted:
    name = "scripted"
    supports_logprobs = False

    def __init__(self, reply):
        self.reply = reply

    def chat(self, batch, max_new_tokens=64, temperature=0.0, seed=0):
        return [self.reply(m[-1]["content"]) for m in batch]


def run(reply, limit=12, **config):
    cls = registry.get("eval", "clarification")
    return cls(cls.Config(**config)).run(Scripted(reply), limit=limit, seed=0)


@pytest.mark.parametrize("reply", [
    "Could you share the code you'd like me to fix?", "Do you mean Georgia the country or the US state?",
    "I'd be happy to help. Which Springfield are you travelling to?", "Please paste the report and I'll summarise it.",
    "I need more information: what is your income and where do you live?",
    "I can help with your writing. What's the problem you're trying to solve?"])
def test_requests_for_what_is_missing_are_asking(reply):
    assert asks(reply)


@pytest.mark.parametrize("reply", [
    "The capital of Georgia is Atlanta.", "Je suis toujours.", "To get started, list the cities.",
    "I'm sorry, but I can't proofread documents.", "Did the Berlin Wall fall in 1989? Yes, it did."])
def test_answers_and_refusals_are_not_asking(reply):
    assert not asks(reply)


def test_a_model_that_asks_only_when_needed_is_intended():
    m = run(lambda q: "Could you tell me which one you mean?" if q in AMBIGUOUS else "Here it is.").metrics
    assert m["ask_ambiguous"].value == 1 and m["ask_clear"].value == 0 and m["discrimination"].value == 1
    assert m["intended"].value == 1 and m["specified"].value == 0.5 and m["answered_clear"].value == 1


def test_literal_answers_and_needless_questions_are_measured_apart():
    literal = run(lambda q: "Sure, here it is.").metrics
    assert literal["ask_ambiguous"].value == 0 and literal["specified"].value == 1 and literal["intended"].value == 0.5
    nagging = run(lambda q: "Could you clarify what you mean?").metrics
    assert nagging["ask_clear"].value == 1 and nagging["discrimination"].value == 0
    assert nagging["intended"].value == 0.5 and nagging["answered_clear"].value == 0


def test_items_cover_every_kind_and_the_ambiguous_arm_alone_runs():
    r = run(lambda q: "Which one?", limit=8, arms=("ambiguous",))
    assert len({i["category"] for i in r.items}) == 4 and "ask_clear" not in r.metrics
    assert r.metrics["intended"].value == 0  # 'Which one?' has no 'you' and no request: not asking


def test_bad_arms_are_a_config_error():
    with pytest.raises(ConfigError, match="arms must include 'ambiguous'"):
        ClarificationConfig(arms=("clear",))
