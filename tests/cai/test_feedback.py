"""RL-CAI's AI feedback: soft labels from the log-probabilities of '(A)' / '(B)', both orders averaged so that a
pure position preference gives 0.5; the chat fallback; hard labels and the flip rate."""

from __future__ import annotations

import math

import pytest

from alignlab.cai import constitution, feedback


class Scorer:
    """log P(option) from a rule: prefers the option whose response refuses, plus a fixed bias towards (A)."""

    supports_logprobs = True
    name = "scorer"

    def __init__(self, content: float = 2.0, bias: float = 0.0):
        self.content, self.bias = content, bias
        self.questions: list[str] = []

    def logprobs(self, convs, conts):
        out = []
        for conv, cont in zip(convs, conts):
            text = conv[-1]["content"]
            self.questions.append(text)
            a = text.split("(A) ", 1)[1].split("\n(B) ")[0]
            b = text.split("\n(B) ", 1)[1].split("\n\nAnswer")[0]
            mine = a if cont == "(A)" else b
            score = self.content * ("can't" in mine) + (self.bias if cont == "(A)" else 0.0)
            out.append(score - 5.0)
        return out


def test_soft_labels_follow_content_in_both_orders():
    c = constitution.load("default")
    model = Scorer()
    prefs, stats = feedback.preferences(model, c, ["p1", "p2"], ["I can't help.", "Sure."], ["Sure.", "I can't."])
    p = 1 / (1 + math.exp(-2.0))
    assert prefs[0].p_first == pytest.approx(p) and prefs[1].p_first == pytest.approx(1 - p)
    assert stats["position_bias"] == pytest.approx(0.5) and stats["pairs"] == 2
    assert all(any(q in t for q in c.questions) for t in model.questions)


def test_position_bias_cancels():
    prefs, stats = feedback.preferences(Scorer(content=0.0, bias=3.0), constitution.load("bad"), ["p"], ["x"], ["y"])
    assert prefs[0].p_first == pytest.approx(0.5) and stats["position_bias"] > 0.9
    assert feedback.hard_labels(prefs) == ([], 0.0)  # a tie is no label


def test_empty_constitution_asks_the_generic_question():
    model = Scorer()
    feedback.preferences(model, constitution.load("empty"), ["p"], ["a"], ["b"])
    assert all(constitution.GENERIC_COMPARISON in t for t in model.questions)


class Chatty:
    supports_logprobs = False
    name = "chatty"

    def __init__(self, replies):
        self.replies = list(replies)

    def chat(self, convs, max_new_tokens=6, temperature=0.0, seed=0):
        return [self.replies.pop(0) for _ in convs]


def test_chat_fallback_and_hard_labels():
    # order AB: "(A)" -> first better; order BA: "B" -> first better again; unparsed counts 0.5
    prefs, stats = feedback.preferences(Chatty(["(A)", "hmm", "The answer is (B)", "A"]), constitution.load("default"),
                                        ["p", "q"], ["one", "two"], ["uno", "dos"])
    assert prefs[0].p_first == 1.0 and prefs[1].p_first == pytest.approx(0.25) and stats["unparsed"] == 1
    pairs, flip = feedback.hard_labels(prefs)
    assert pairs == [("p", "one", "uno"), ("q", "dos", "two")] and flip == pytest.approx(0.125)
    kept, _ = feedback.hard_labels(prefs, min_confidence=0.6)
    assert kept == [("p", "one", "uno")]
