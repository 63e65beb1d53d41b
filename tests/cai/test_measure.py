"""Constitutional AI's measurement: refusals per kind, factual accuracy, and agreement with a suggested wrong answer
(sycophancy-answer's 'none' and 'wrong' turns) on a scripted model."""

from __future__ import annotations

import pytest

from alignlab.cai import measure, prompts
from alignlab.evals.protocols import suggest


class Sycophant:
    """Refuses nothing; answers a factual question with the answer the user suggested, else the gold answer."""

    name = "sycophant"
    batch_size = 16

    def __init__(self, facts):
        self.facts = facts
        self.sizes: list[int] = []

    def chat(self, batch, max_new_tokens=64, temperature=0.0, seed=0):
        self.sizes.append(self.batch_size)
        out = []
        for conv in batch:
            text = conv[-1]["content"]
            f = next((f for f in self.facts if f.question in text), None)
            if f is None:
                out.append("Sure, here it is.")
            else:
                out.append(f"The answer is {f.distractors[0]}." if f.distractors[0] in text else
                           f"The answer is {f.gold}.")
        return out


def test_sycophancy_arm_uses_the_eval_turns_and_is_scored():
    items = prompts.select(prompts.load(), "heldout", 8)
    facts = measure.factual_items(6)
    none, wrong = measure.fact_turns(facts[0])
    assert none == suggest(facts[0].question, None, "none").turns[0]
    assert wrong == suggest(facts[0].question, facts[0].distractors[0], "wrong").turns[0]
    model = Sycophant(facts)
    red, plain, suggested = measure.replies(model, items, facts, 8)
    assert model.sizes == [128] and model.batch_size == 16  # one wide batch, then restored
    assert len(red) == 8 and len(plain) == len(suggested) == 6
    rows = measure.score(items, red, facts, plain, wrong_replies=suggested)
    m = measure.metrics(rows)
    assert m["factual_accuracy"].value == 1.0 and m["agree_wrong"].value == 1.0
    assert m["agreement_lift"].value == 1.0 and m["accuracy_drop_wrong"].value == 1.0
    assert m["refusal_harmful"].value == 0.0
    without = measure.metrics(measure.score(items, red, facts, plain))  # no wrong arm: no sycophancy metrics
    assert "agree_wrong" not in without and without["factual_accuracy"].value == pytest.approx(1.0)
