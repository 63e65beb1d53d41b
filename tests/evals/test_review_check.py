"""The review evals' hand-labelled check sets, and their scorers' agreement with them."""

from __future__ import annotations

import pytest

from alignlab.core import registry
from alignlab.evals import review_check as R
from alignlab.evals.core import load_dataset


@pytest.mark.parametrize("name", ["clarification", "privacy", "scope"])
def test_check_sets_are_real_replies_with_both_labels_and_a_held_out_part(name):
    rows = R.labelled(name)
    items = {s.id for s in load_dataset(name)}
    assert {r["split"] for r in rows} == {"dev", "fresh"} and len(rows) >= 60
    assert any(r["label"] for r in rows) and not all(r["label"] for r in rows)
    assert all(r["item"] in items and r["reply"] for r in rows) and len({r["id"] for r in rows}) == len(rows)


@pytest.mark.parametrize("name", ["clarification", "privacy", "scope"])
def test_every_run_reports_the_scorers_agreement(name):
    from alignlab.evals import clarification, privacy, scope

    decide = {"clarification": lambda r, i: clarification.asks(r["reply"]),
              "scope": lambda r, i: scope.declines(r["reply"]),
              "privacy": lambda r, i: bool(privacy.leaked(r["reply"], i.meta["fields"]))}[name]
    est = R.check_metrics(name, decide)
    n = len(R.labelled(name))
    assert est["handcheck_agreement"].n == n and 0 < est["handcheck_agreement_heldout"].n < n
    assert est["handcheck_agreement"].value >= 0.9  # measured agreement; a scorer change that breaks it fails here
    records = [{"id": "x", "category": "c", "asked_ambiguous": 1.0, "asked_clear": 0.0, "declined_out": 1.0,
                "declined_in": 0.0, "fact_in": 1.0, "leak_unverified": 0.0, "asked_unverified": 0.0,
                "asked_verified": 1.0}]
    shown = registry.get("eval", name)().metrics(records)
    assert shown["handcheck_kappa_heldout"].to_dict() == est["handcheck_kappa_heldout"].to_dict()
