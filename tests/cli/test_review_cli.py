"""`alignlab review` as a user runs it: a malformed card is one line and exit 2, the CI gate exits 1 on a
high-severity finding and 0 once the card adds the safeguard, and the outputs land where asked."""

from __future__ import annotations

import copy
import json

import yaml

from tests.conftest import REPO, run_cli
from tests.review.conftest import MINIMAL, card_path, write_card


def test_malformed_card_is_one_line_and_exit_2(tmp_path):
    bad = card_path("resume-screener").read_text().replace("high_stakes: true", "high_stakes: very")
    path = tmp_path / "screener.yaml"
    path.write_text(bad)
    r = run_cli("review", str(path), "--no-measure")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines == ["error: screener.yaml:33: field 'deployment.high_stakes': must be a boolean (got str 'very')"]
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_ci_gate_fails_on_high_and_passes_once_the_safeguard_is_added(tmp_path):
    card = copy.deepcopy(MINIMAL)
    card["autonomy"]["level"] = "human-monitors"
    card["tools"][0]["requires_approval"] = False
    path = write_card(tmp_path / "refund.yaml", card)
    r = run_cli("review", str(path), "--no-measure", "--fail-on", "high", "-o", str(tmp_path / "r.json"))
    assert r.returncode == 1, r.stderr
    assert "gate: 1 finding(s) at or above high: AR-1.0 (high)" in r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["max_severity"] == "high"
    card["tools"][0]["requires_approval"] = True
    write_card(path, card)
    r = run_cli("review", str(path), "--no-measure", "--fail-on", "high")
    assert r.returncode == 0, r.stderr
    assert "gate: no finding at or above high" in r.stderr and r.stdout.startswith("# Alignment review: Refund")


def test_outputs_and_schema(tmp_path):
    out = tmp_path / "review.html"
    r = run_cli("review", str(card_path("content-recommender")), "--no-measure", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("<!doctype html>") and 'data-id="RM-1"' in out.read_text()
    r = run_cli("review", "--schema")
    assert json.loads(r.stdout) == json.loads((REPO / "schemas" / "system-card.schema.json").read_text())
    r = run_cli("review", str(card_path("coding-agent")), "--no-measure", "--mode", "intent")
    assert r.returncode == 2 and "add --model SPEC" in r.stderr
    assert yaml.safe_load(card_path("coding-agent").read_text())["evidence"]["guard_policy"] == "default-coding"
