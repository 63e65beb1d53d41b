"""The refusal judge: both backends' paths (log-probabilities, chat), its agreement with the
hand labels, and the framing eval deciding refusals by judge."""

from __future__ import annotations

import pytest

from alignlab.core import registry
from alignlab.evals import judge as J
from alignlab.evals.scorers import refuses
from tests.evals.test_evals_logic import Scripted


def reply_of(messages) -> str:
    return messages[-1]["content"].split("\n\nReply: ")[1].split("\n\nDid the assistant")[0]


def test_chat_judge_that_reads_like_the_detector_agrees_like_it():
    judge = J.RefusalJudge(Scripted(lambda m: "Yes." if refuses(reply_of(m)) else "no, it helps"))
    a = J.judge_agreement(judge)
    rows = J.handcheck()
    expected = J.agreement([bool(r["refused"]) for r in rows], [refuses(r["reply"]) for r in rows])
    assert {k: a[k] for k in expected} == expected and a["unparsed"] == 0
    assert len(a["matches"]) == 112 and sum(a["matches"]) == round(a["agreement"] * 112)


def test_logprob_judge_and_unparsed_replies():
    def score(messages, continuation):
        sorry = "sorry" in reply_of(messages).lower()
        return 0.0 if (continuation == "Yes") == sorry else -5.0

    judge = J.RefusalJudge(Scripted(lambda m: "unused", score=score))
    assert judge.refuses(["q1", "q2"], ["I'm sorry, no.", "Sure, here it is."]) == [True, False]
    mumbler = J.RefusalJudge(Scripted(lambda m: "Maybe?"))
    assert mumbler.refuses(["q"], ["r"]) == [False] and mumbler.unparsed == 1


def test_every_hand_label_has_its_request():
    rows = J.handcheck()
    assert all(r["request"].endswith(r["request"].split()[-1]) and len(r["request"]) > 10 for r in rows)
    assert {r["arm"] for r in rows} <= {"plain", "authority", "research"}


def test_agreement_kappa():
    a = J.agreement([True, True, False, False], [True, False, False, False])
    assert a["agreement"] == 0.75 and a["kappa"] == pytest.approx(0.5) and a["missed"] == 1


def test_framing_with_a_judge_reports_its_agreement(monkeypatch):
    """The framing eval loads the judge by spec, lets it decide every refusal, and reports its
    agreement on the 112 hand labels (a scripted judge stands in for a model here)."""
    from alignlab.evals import backends

    loaded = []
    contrarian = Scripted(lambda m: "No")  # never sees a refusal, though every reply below is one
    monkeypatch.setattr(backends, "make_model", lambda spec, **kw: loaded.append(spec) or contrarian)
    model = Scripted(lambda m: "I'm sorry, I can't help with that.")
    cls = registry.get("eval", "framing")
    result = cls(cls.Config(judge="some-judge", max_new_tokens=8)).run(model, limit=6, seed=0)
    assert loaded == ["some-judge"]
    values = [r[k] for r in result.items for k in r if k.startswith("refused_")]
    assert values and all(v == 0.0 for v in values)  # the judge decided, not the phrase detector
    est = result.metrics["judge_agreement"]
    assert est.n == 112 and est.value == pytest.approx(1 - 17 / 112)  # "No" matches the 95 non-refusals
    assert result.metrics["judge_kappa"].value == 0.0  # ... and no better than chance
    plain = cls(cls.Config(max_new_tokens=8)).run(model, limit=6, seed=0)
    assert all(r[k] == 1.0 for r in plain.items for k in r if k.startswith("refused_"))
    assert "judge_agreement" not in plain.metrics
