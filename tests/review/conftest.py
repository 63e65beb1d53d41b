"""Shared helpers for the review tests: the example cards and a small card to edit."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

CARDS = REPO / "examples" / "cards"
EXAMPLES = ("support-chatbot", "resume-screener", "content-recommender", "coding-agent")

MINIMAL = {
    "card_version": 1,
    "name": "Refund assistant",
    "purpose": {
        "summary": "Decides small refund requests.",
        "intended_goal": "Customers with a valid claim are refunded quickly; invalid claims are declined politely.",
        "out_of_scope": ["large refunds"],
        "trade_offs": "A valid claim is never declined to save cost.",
    },
    "objectives": [
        {
            "metric": "refund cost per week",
            "kind": "cost",
            "optimized_by": "business-target",
            "monitored": True,
            "counter_metrics": ["declines overturned on appeal"],
        }
    ],
    "data": {
        "sources": ["claims"],
        "history": "Claims 2023-2024 with verified outcomes.",
        "historical_decisions": False,
        "personal_data": False,
    },
    "users": {"primary": ["support staff"], "affected": ["customers"]},
    "autonomy": {"level": "human-approves"},
    "tools": [{"name": "issue_refund", "permissions": ["payment"], "requires_approval": True}],
    "deployment": {"context": "Back office.", "high_stakes": False},
    "safeguards": {
        "human_review": "Staff approve each refund.",
        "rollback": True,
        "escalation_path": "Team lead queue",
        "kill_switch": True,
        "audit_log": True,
        "appeal": "Customers reply to contest a decline.",
        "red_team": True,
        "clarification": True,
    },
}


def card_path(name: str) -> Path:
    return CARDS / f"{name}.yaml"


def write_card(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny():
    """(folder, model): the tiny random Llama of lm/testing.py, loaded once for the review tests (plumbing only)."""
    from alignlab.evals.backends import make_model
    from alignlab.lm.testing import cached_tiny_llama

    path = str(cached_tiny_llama())
    return path, make_model(path)
