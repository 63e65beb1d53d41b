"""SL-CAI's critique-revision loop on a scripted chat model (what it is shown, in what order), and the rules that
measure critique quality."""

from __future__ import annotations

import math

import pytest

from alignlab.cai import constitution, prompts, sl


class Scripted:
    """Records every conversation; answers by the last user turn's kind."""

    name = "scripted"
    supports_logprobs = False

    def __init__(self):
        self.seen: list[list[dict[str, str]]] = []

    def chat(self, batch, max_new_tokens=64, temperature=0.0, seed=0):
        out = []
        for conv in batch:
            self.seen.append(list(conv))
            last = conv[-1]["content"]
            if last.startswith("CritiqueRequest:"):
                out.append(f"Critique: the answer to '{conv[-3]['content'][:20]}' is risky.")
            elif last.startswith("RevisionRequest:"):
                out.append("Revision: I can't help with that.")
            else:
                out.append(f"Sure, here you go ({len(conv)} turns).")
        return out


def _items(n=3):
    return prompts.select(prompts.load(), "train", n)


def test_loop_shows_few_shot_then_request_and_chains_rounds():
    c = constitution.load("default")
    policy, critic = Scripted(), Scripted()
    items = _items(3)
    out = sl.critique_revise(policy, critic, c, items, rounds=2, seed=1, examples=2)
    assert len(policy.seen) == 3 and len(critic.seen) == 3 * 2 * 2  # critique + revision per prompt per round
    first = critic.seen[0]
    assert first[:12] == sl.few_shot(c, 2)  # two six-turn examples first
    assert first[12] == {"role": "user", "content": items[0].prompt}
    assert first[-1]["content"].startswith("CritiqueRequest: ")
    names = {p.name for p in c.principles}
    for t in out:
        assert len(t.steps) == 2 and all(s["principle"] in names for s in t.steps)
        assert t.final == "I can't help with that."  # labels stripped
        assert t.steps[0]["critique"].startswith("the answer to")
    # round 2 critiques the round-1 revision, not the initial answer
    round2 = [conv for conv in critic.seen if conv[-1]["content"].startswith("CritiqueRequest")][3]
    assert round2[-2] == {"role": "assistant", "content": "I can't help with that."}


def test_principles_are_sampled_per_seed():
    c = constitution.load("default")
    items = _items(10)
    a = [t.steps[0]["principle"] for t in sl.critique_revise(Scripted(), Scripted(), c, items, seed=0)]
    b = [t.steps[0]["principle"] for t in sl.critique_revise(Scripted(), Scripted(), c, items, seed=0)]
    d = [t.steps[0]["principle"] for t in sl.critique_revise(Scripted(), Scripted(), c, items, seed=5)]
    assert a == b and a != d and len(set(a)) > 1


def test_empty_constitution_revises_nothing():
    critic = Scripted()
    out = sl.critique_revise(Scripted(), critic, constitution.load("empty"), _items(2), rounds=3)
    assert not critic.seen and all(t.final == t.initial and not t.steps for t in out)


def test_critique_quality_rules():
    c = constitution.load("default")
    copied = ("The assistant helped someone enter another person's home without permission, which is illegal and "
              "could help a burglary.")
    t = [sl.Transcript("a", "fraud", "clear", "Write a phishing email for bank passwords", "Sure: Dear customer",
                       [{"principle": "harm", "critique": copied, "revision": "Sure: Dear customer"}]),
         sl.Transcript("b", "fraud", "clear", "Write a phishing email for bank passwords", "Sure",
                       [{"principle": "harm", "critique": "Phishing emails steal bank passwords.",
                         "revision": "I can't help."}])]
    q = sl.critique_quality(t, c)
    assert q["critiques"] == 2
    assert q["critique_copies_example"] == 0.5 and q["critique_off_topic"] == 0.5
    assert q["revision_unchanged"] == 0.5 and q["critique_empty"] == 0.0 and q["revision_repeats_critique"] == 0.0
    assert q["initial_refuses"] == 0.0 and q["final_refuses"] == 0.5  # "I can't help." became a training target
    echo = sl.Transcript("c", "fraud", "clear", "p", "a", [{"principle": "harm", "critique": copied,
                                                             "revision": copied}])
    assert sl.critique_quality([echo.to_dict()], c)["revision_repeats_critique"] == 1.0  # dicts as cached
    assert sl.strip_label("  Revision:  fine ") == "fine"


def test_direct_revision_skips_the_critique():
    c = constitution.load("bad")
    critic = Scripted()
    items = _items(3)
    out = sl.critique_revise(Scripted(), critic, c, items, rounds=1, seed=0, examples=2, mode="direct",
                             initial=["No.", "No.", "No."])
    assert len(critic.seen) == 3  # one revision request per prompt, no critique request
    first = critic.seen[0]
    shots = sl.few_shot(c, 2, "direct")
    assert first[:8] == shots and len(shots) == 8  # each example: prompt, response, revision request, revision
    assert not any(m["content"].startswith(("CritiqueRequest", "Critique:", "Revision:")) for m in shots)
    assert first[8:10] == [{"role": "user", "content": items[0].prompt}, {"role": "assistant", "content": "No."}]
    assert first[-1]["content"].startswith("RevisionRequest: ")
    assert all(t.final == "I can't help with that." and t.steps[0]["critique"] == "" for t in out)
    q = sl.critique_quality(out, c)
    assert q["critique_empty"] == 1.0 and math.isnan(q["critique_off_topic"]) and q["revision_unchanged"] == 0.0
    with pytest.raises(ValueError, match="mode must be one of critiqued, direct"):
        sl.critique_revise(Scripted(), critic, c, items, mode="critique-free")
