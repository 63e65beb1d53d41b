"""`alignlab review` as a user runs it: a malformed card is one line and exit 2, the CI gate exits 1 on a
high-severity finding and 0 once the card adds the safeguard, and the outputs land where asked."""

from __future__ import annotations

import copy
import json

import yaml

import pytest

from alignlab.cli.main import main
from tests.conftest import REPO, run_cli
from tests.review.conftest import MINIMAL, card_path, write_card


def alignlab(capsys, *argv: str) -> tuple[int, str, str]:
    """The command in this process (the subprocess test above covers the real entry point): exit code, out, err."""
    with pytest.raises(SystemExit) as done:
        main([*argv])
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def test_malformed_card_is_one_line_and_exit_2(tmp_path):
    bad = card_path("resume-screener").read_text().replace("high_stakes: true", "high_stakes: very")
    path = tmp_path / "screener.yaml"
    path.write_text(bad)
    r = run_cli("review", str(path), "--no-measure")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines == ["error: screener.yaml:33: field 'deployment.high_stakes': must be a boolean (got str 'very')"]
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_ci_gate_fails_on_high_and_passes_once_the_safeguard_is_added(tmp_path, capsys):
    card = copy.deepcopy(MINIMAL)
    card["autonomy"]["level"] = "human-monitors"
    card["tools"][0]["requires_approval"] = False
    path = write_card(tmp_path / "refund.yaml", card)
    code, out, err = alignlab(capsys, "review", str(path), "--no-measure", "--fail-on", "high", "-o",
                              str(tmp_path / "r.json"))
    assert code == 1, err
    assert "gate: 1 finding(s) at or above high: AR-1.0 (high)" in err
    assert json.loads((tmp_path / "r.json").read_text())["max_severity"] == "high"
    card["tools"][0]["requires_approval"] = True
    write_card(path, card)
    code, out, err = alignlab(capsys, "review", str(path), "--no-measure", "--fail-on", "high")
    assert code == 0, err
    assert "gate: no finding at or above high" in err and out.startswith("# Alignment review: Refund")


def test_outputs_and_schema(tmp_path, capsys):
    page = tmp_path / "review.html"
    code, _, err = alignlab(capsys, "review", str(card_path("content-recommender")), "--no-measure", "-o", str(page))
    assert code == 0, err
    assert page.read_text().startswith("<!doctype html>") and 'data-id="RM-1"' in page.read_text()
    code, out, _ = alignlab(capsys, "review", "--schema")
    assert json.loads(out) == json.loads((REPO / "schemas" / "system-card.schema.json").read_text())
    code, _, err = alignlab(capsys, "review", str(card_path("coding-agent")), "--no-measure", "--mode", "intent")
    assert code == 2 and "add --model SPEC" in err
    assert yaml.safe_load(card_path("coding-agent").read_text())["evidence"]["guard_policy"] == "default-coding"
