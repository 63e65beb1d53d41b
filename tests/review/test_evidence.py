"""Measured evidence from a card's model endpoint: the matching evals run through the eval registry, their numbers
(with intervals) become findings and attach to the rule findings they re-measure. The tiny random test model keeps
this fast; the embedded model's real run is in docs/review.md."""

from __future__ import annotations

import math

from alignlab.core import registry
from alignlab.review.card import load_card
from alignlab.review.engine import review
from alignlab.review.evidence import matching_evals, severity_of
from tests.evals.test_endpoint import served  # noqa: F401,F811 - the `alignlab serve` fixture
from tests.review.conftest import card_path


def test_matching_evals_follow_the_card():
    chatbot = matching_evals(load_card(card_path("support-chatbot")))
    screener = matching_evals(load_card(card_path("resume-screener")))
    assert chatbot[:3] == ["sycophancy-answer-v0", "sycophancy-are-you-sure-v0", "calibration-v0"]
    assert "sycophancy-feedback-v0" in chatbot and "sycophancy-feedback-v0" not in screener  # ratings only
    assert "framing-v0" in chatbot  # out-of-scope uses are named
    for name, wanted in (("privacy", True), ("scope", True), ("clarification", True)):
        if registry.resolve_or_none("eval", name):  # written alongside; used whenever registered
            assert (registry.resolve("eval", name) in chatbot) == wanted


def test_chatbot_sycophancy_is_measured_and_attached(tiny):
    path, model = tiny
    card = load_card(card_path("support-chatbot"))
    result = review(
        card, items=2, model_spec=path, model=model, evals=["sycophancy-answer-v0", "sycophancy-are-you-sure-v0"]
    )
    by_id = {f["id"]: f for f in result["findings"]}
    measured = by_id["ME-sycophancy-answer"]
    assert measured["origin"] == "measured" and measured["category"] == "reward-misspecification"
    entry = next(e for e in result["evidence"] if e["name"] == "sycophancy-answer-v0")
    est = next(r["estimate"] for r in entry["effects"] if r["metric"] == "accuracy_drop_wrong")
    assert est["n"] == 2 and est["lo"] <= est["value"] <= est["hi"]
    assert f"[{est['lo']:.2f}, {est['hi']:.2f}] (n=2)" in measured["reasoning"]
    rm = by_id["RM-1"]  # the rating metric's rule finding now carries the measurement
    assert {x["finding"] for x in rm["evidence"]} == {"ME-sycophancy-answer", "ME-sycophancy-are-you-sure"}
    cov = result["coverage"]
    assert cov["measured"] and 0 < cov["remeasured"] < cov["total"]
    assert review(card, measure=False)["coverage"]["remeasured"] == 0


def test_severity_follows_the_interval():
    est = lambda v, lo, hi, n=8: {"value": v, "lo": lo, "hi": hi, "n": n}
    assert severity_of("effect", est(0.5, 0.25, 0.8)) == "high"
    assert severity_of("effect", est(0.3, 0.05, 0.6)) == "medium"
    assert severity_of("effect", est(0.1, -0.2, 0.4)) == "low"
    assert severity_of("effect", est(0.0, 0.0, 0.0)) == "info"
    assert severity_of("rate", est(0.75, 0.5, 1.0)) == "high"
    assert severity_of("good", est(0.9, 0.8, 1.0)) == "info" and severity_of("good", est(0.1, 0.0, 0.3)) == "high"
    assert severity_of("rate", est(math.nan, math.nan, math.nan, 0)) is None


def test_a_card_naming_a_model_served_by_alignlab_serve_gets_measured_numbers(served, tmp_path, monkeypatch):  # noqa: F811
    """The card's endpoint is `alignlab serve` (over the tiny test model): sycophancy, framing, clarification,
    privacy and scope are measured through the OpenAI-compatible client and attached as findings."""
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))  # a fresh response cache: every item is asked
    url, path, _ = served
    wanted = ["sycophancy-answer-v0", "framing-v0", "clarification-v0", "privacy-v0", "scope-v0"]
    result = review(load_card(card_path("support-chatbot")), items=2, model_spec=f"openai:{url}/{path.name}",
                    evals=wanted)
    measured = {e["name"]: e for e in result["evidence"] if e.get("name") in wanted}
    assert set(measured) == set(wanted)
    for name, entry in measured.items():
        ns = [r["estimate"]["n"] for r in entry.get("effects", []) + entry.get("rates", []) if "estimate" in r]
        assert ns and max(ns) >= 1, (name, entry)
    assert result["coverage"]["remeasured"] > 0
