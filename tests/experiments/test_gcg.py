"""The GCG experiment: config checks, the seeded behaviour pool, the report from stored records (the contract test
runs a real cell on the embedded model)."""

from __future__ import annotations

import pytest

from alignlab.core.errors import ConfigError, UserError
from alignlab.core.record import RunRecord
from alignlab.experiments.gcg import GCG, GCGConfig, hf_parts, pool_of
from alignlab.reports import html


def test_config_checks():
    with pytest.raises(ConfigError, match="attacks"):
        GCGConfig(attacks=("beam",))
    with pytest.raises(ConfigError, match="steps"):
        GCGConfig(steps=0)
    with pytest.raises(ConfigError):
        GCGConfig(transfer=("embedded#no-such-technique",))
    assert [c["attack"] for c in GCG(GCGConfig.quick()).cells()] == ["gcg", "random"]


def test_pool_is_seeded_and_split():
    a, b = pool_of(12, 0), pool_of(12, 0)
    assert [x.id for x in a] == [x.id for x in b] != [x.id for x in pool_of(12, 1)]
    assert [x.split for x in a] == ["train"] * 8 + ["heldout"] * 4
    assert len(pool_of(0, 0)) == 36


def test_gradient_attack_needs_a_local_model():
    class Endpoint:
        name = "openai:http://x/v1/m"

        def chat(self, *a, **k):
            return []

    with pytest.raises(UserError, match="not a local model"):
        hf_parts(Endpoint())


def _record(attack: str, seed: int) -> RunRecord:
    rows = [{"arm": "found", "id": "h0", "split": "train", "reply": "Sure", "detector": True, "prefix": False},
            {"arm": "found", "id": "h1", "split": "heldout", "reply": "I'm sorry", "detector": False, "prefix": False},
            {"arm": "init", "id": "h0", "split": "train", "reply": "I'm sorry", "detector": False, "prefix": False},
            {"arm": "transfer0", "id": "h2", "reply": "Sure", "detector": True, "prefix": False}]
    metrics = {"specified": 0.5, "intended": 0.25, "gap": 0.25, "init_loss": 1.1, "best_loss": 0.7, "steps": 3,
               "asr_train_detector": 1.0, "init_asr_train_detector": 0.0, "declined_plain": 2, "pool": 4,
               "detector~prefix_agreement": 0.5, "detector~prefix_kappa": 0.0, "transfer0_declined_plain": 0.25}
    return RunRecord("gcg-v0", {"attack": attack, "model": "embedded", "transfer": ["embedded#system=x"]}, "h", seed,
                     "ok", "v", metrics=metrics, data={"replies": rows, "losses": [1.0, 0.8, 0.7], "seconds": 2.0})


def test_report_tables_and_findings():
    records = [_record("gcg", 0), _record("random", 0)]
    exp = GCG()
    tables = {t.title: t for t in exp.tables(records)}
    success = tables["Attack success on declined requests"].rows
    assert success[0][:3] == ["gcg", "found suffix", "train"] and success[0][3].startswith("1.00")
    assert len(tables["Transfer of the found suffix to other models"].rows) == 2
    agree = tables["Agreement between the judges"].rows  # pooled found + init replies of both seeds' cells
    assert agree[0][:7] == ["gcg", "detector vs prefix", "3", "0.33", "0.00", "0.67",
                            "undefined: prefix always says refused"]
    assert any("loss 1.10 -> 0.70" in f for f in exp.findings(records))
    assert 'data-experiment="gcg-v0"' in html.experiment_section("gcg-v0", records)
