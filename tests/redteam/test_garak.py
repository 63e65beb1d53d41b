"""Reading garak's report JSONL into per-probe results, and the command line it is run with."""

from __future__ import annotations

import json

import pytest

from alignlab.core.errors import UserError
from alignlab.redteam import garak


def _write(path, entries):
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def test_read_report(tmp_path):
    report = _write(tmp_path / "x.report.jsonl", [
        {"entry_type": "start_run setup", "plugins.target_name": "embedded"},
        {"entry_type": "attempt", "status": 1}, {"entry_type": "attempt", "status": 2},
        {"entry_type": "attempt", "status": 2},
        {"entry_type": "eval", "probe": "dan.Dan_11_0", "detector": "dan.DAN", "passed": 1, "fails": 1, "nones": 0,
         "total_evaluated": 2, "total_processed": 2}])
    out = garak.read_report(report)
    assert out["target"] == "embedded" and out["attempts"] == 2
    [r] = out["results"]
    assert r["probe"] == "dan.Dan_11_0" and r["attack_success"] == 0.5
    assert garak.find_reports(tmp_path) == [report] and garak.find_reports(tmp_path / "none") == []


def test_bad_reports_are_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        garak.read_report(tmp_path / "missing.jsonl")
    (tmp_path / "b.jsonl").write_text("{oops\n")
    with pytest.raises(UserError, match="not JSON"):
        garak.read_report(tmp_path / "b.jsonl")
    with pytest.raises(UserError, match="no 'eval' entries"):
        garak.read_report(_write(tmp_path / "c.jsonl", [{"entry_type": "attempt", "status": 2}]))


def test_command_names_the_generator_and_probes(tmp_path):
    argv = garak.command("py", "http://127.0.0.1:1/v1", "embedded", ["dan.Dan_11_0", "grandma.Substances"],
                         tmp_path / "o.json", "run1")
    assert argv[:3] == ["py", "-m", "garak"] and "openai.OpenAICompatible" in argv
    assert argv[argv.index("--probes") + 1] == "dan.Dan_11_0,grandma.Substances"
    assert garak.options("http://h/v1")["openai"]["OpenAICompatible"]["temperature"] == 0
