"""Rule-based findings: the four example cards give different findings, each where its card says it should; the
checklist, the gaming analysis and the NIST mapping follow from the card."""

from __future__ import annotations

import copy

import pytest

from alignlab.core import registry
from alignlab.review.card import load_card, parse_card
from alignlab.review.engine import gate, review
from alignlab.review.nist import FUNCTIONS, SUBCATEGORIES
from alignlab.review.rules import CATEGORIES
from tests.review.conftest import EXAMPLES, MINIMAL, card_path

import yaml


@pytest.fixture(scope="module")
def reviews():
    return {n: review(load_card(card_path(n)), measure=False) for n in EXAMPLES}


def ids(result) -> dict[str, dict]:
    return {f["id"]: f for f in result["findings"]}


def test_screener_is_flagged_for_learning_from_historical_decisions(reviews):
    f = ids(reviews["resume-screener"])["GM-1"]
    assert f["severity"] == "high" and f["category"] == "goal-misalignment"
    assert "data.historical_decisions" in f["lines"] and "MEASURE 2.11" in f["nist"]
    assert any("biased-hiring" in x["command"] for x in f["experiments"])
    assert "GM-1" not in ids(reviews["content-recommender"]) and "GM-1" not in ids(reviews["coding-agent"])


def test_recommender_is_flagged_for_engagement_gaming(reviews):
    rec = ids(reviews["content-recommender"])
    engagement = [f for f in rec.values() if f["category"] == "reward-misspecification" and "Engagement" in f["title"]]
    assert len(engagement) == 2 and all(f["severity"] == "high" for f in engagement)
    assert "outrage" in engagement[0]["reasoning"] and "well-being" in engagement[0]["safeguard"]
    assert any("engagement-recommender" in x["command"] for x in engagement[0]["experiments"])
    gaming = [g for g in reviews["content-recommender"]["gaming"] if g["kind"] == "engagement"]
    assert gaming and gaming[0]["kind_inferred"]  # 'watch time per session' carries no kind: inferred from its name


def test_coding_agent_gets_the_autonomy_findings(reviews):
    agent = ids(reviews["coding-agent"])
    approvals = [f for i, f in agent.items() if i.startswith("AR-1.")]
    assert {f["title"].split("'")[1] for f in approvals} == {"edit_file", "run", "open_pull_request"}
    assert {"AR-3", "AR-4", "AR-6"} <= set(agent)
    assert "AR-2" not in agent  # the card claims rollback
    for other in ("support-chatbot", "resume-screener", "content-recommender"):
        assert not any(i.startswith("AR-1") for i in ids(reviews[other]))


def test_chatbot_rating_metric_is_linked_to_the_sycophancy_evals(reviews):
    f = ids(reviews["support-chatbot"])["RM-1"]
    assert "sycophancy" in f["reasoning"] and "eval:sycophancy-answer" in f["measured_by"]


def test_the_four_reviews_differ(reviews):
    sets = {n: frozenset(ids(r)) for n, r in reviews.items()}
    assert len(set(sets.values())) == 4
    for cat in CATEGORIES:  # every category is present in the output, with or without findings
        assert all(cat in r["categories"] for r in reviews.values())


def test_findings_map_to_known_nist_subcategories_and_registered_experiments(reviews):
    experiments = set(registry.names("experiment"))
    for r in reviews.values():
        for f in r["findings"]:
            assert f["nist"] and all(s in SUBCATEGORIES for s in f["nist"])
            assert all(x["experiment"] in experiments for x in f["experiments"])
        assert set(r["nist"]) == set(FUNCTIONS)
    assert all(r["nist"][fn] for fn in FUNCTIONS for r in [reviews["resume-screener"]])


def test_checklist_answers_come_from_the_card(reviews):
    answers = {q["id"]: q for q in reviews["resume-screener"]["checklist"]}
    assert answers["data"]["answer"] == "partial" and "bias audit" in answers["data"]["missing"]
    assert answers["oversight"]["answer"] == "no" and answers["approval"]["answer"] == "n/a"
    coding = {q["id"]: q for q in reviews["coding-agent"]["checklist"]}
    assert coding["rollback"]["answer"] == "yes" and coding["guarded"]["answer"] == "yes"
    assert coding["approval"]["answer"] == "no" and "open_pull_request" in coding["approval"]["missing"]


def test_gate_fires_on_a_high_finding_and_clears_once_the_safeguard_is_added():
    card = copy.deepcopy(MINIMAL)
    card["autonomy"]["level"] = "human-monitors"
    card["tools"][0]["requires_approval"] = False
    risky = review(parse_card(yaml.safe_dump(card), "refund.yaml"), measure=False)
    assert [f["id"] for f in gate(risky, "high")] == ["AR-1.0"]
    card["tools"][0]["requires_approval"] = True  # the safeguard the finding asks for
    fixed = review(parse_card(yaml.safe_dump(card), "refund.yaml"), measure=False)
    assert gate(fixed, "high") == [] and fixed["max_severity"] is None  # a card with every safeguard: no finding


def test_autonomous_irreversible_tools_without_rollback_are_critical():
    card = copy.deepcopy(MINIMAL)
    card["autonomy"]["level"] = "autonomous"
    card["tools"][0]["requires_approval"] = False
    card["safeguards"]["rollback"] = False
    risky = review(parse_card(yaml.safe_dump(card), "refund.yaml"), measure=False)
    assert {f["id"]: f["severity"] for f in gate(risky, "high")} == {"AR-1.0": "critical", "AR-2": "high"}
