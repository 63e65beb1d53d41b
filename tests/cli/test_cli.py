"""The command line: listing, running, reporting, and bad input (one line, exit 2, store untouched)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

SMALL = ["--set", "sigmas=0.5,2", "--set", "betas=0,1", "--set", "belief_scales=1", "--set", "mc_samples=2000"]


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def populated(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("cli") / "runs"
    done = run_cli("run", "off-switch-game", "--quick", "--seeds", "2", *SMALL, runs_dir=runs)
    assert done.returncode == 0, done.stderr
    assert "16 ok, 0 failed" in done.stdout
    return runs


def test_list_shows_experiments_and_kinds():
    out = run_cli("list")
    assert out.returncode == 0 and "off-switch-game-v0" in out.stdout and "experiment" in out.stdout
    assert run_cli("list", "experiment").returncode == 0


def test_describe_shows_documented_config_keys():
    out = run_cli("describe", "off-switch-game")
    assert out.returncode == 0
    assert "belief_scales" in out.stdout and "Boltzmann temperatures" in out.stdout


def test_rerun_skips_stored_cells(populated):
    again = run_cli("run", "off-switch-game", "--quick", "--seeds", "2", *SMALL, runs_dir=populated)
    assert again.returncode == 0 and "0 ok, 0 failed, 16 skipped" in again.stdout


@pytest.mark.parametrize("args,message", [
    (["run", "no-such-experiment"], "unknown experiment 'no-such-experiment'"),
    (["run", "off-switch-game", "--set", "bogus=1"], "unknown config key 'bogus'"),
    (["run", "off-switch-game", "--set", "mc_samples=lots"], "expected int"),
    (["run", "off-switch-game", "--set", "sigmas=-1"], "sigmas must be > 0"),
    (["run", "off-switch-game", "--seeds", "many"], "'many' is not a valid integer"),
    (["run", "off-switch-game", "--backend", "slurm"], "'slurm' is not one of"),
    (["run", "off-switch-game", "--workers", "0"], "--workers must be at least 1"),
    (["run"], "name an experiment to run"),
    (["list", "gadget"], "unknown component kind 'gadget'"),
    (["report", "--format", "pdf"], "'pdf' is not one of"),
    (["frobnicate"], "No such command"),
    (["run", "spec-gaming", "--quick", "--set", "envs=nope"], "unknown env 'nope'"),
    (["eval", "sycophancy-answer", "--model", "/no/such/model", "--limit", "2"], "no model folder at"),
])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(populated, args, message):
    before = digest(populated)
    out = run_cli(*args, runs_dir=populated)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert digest(populated) == before


def test_an_unreadable_store_is_refused_and_not_touched(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "alignlab.sqlite").write_text("garbage, not a database\n")
    before = digest(runs)
    for args in (["run", "off-switch-game", "--quick", *SMALL], ["report"]):
        out = run_cli(*args, runs_dir=runs)
        assert out.returncode == 2 and "not an alignlab results store" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert digest(runs) == before


def test_report_without_a_store_says_what_to_do(tmp_path):
    out = run_cli("report", runs_dir=tmp_path / "empty")
    assert out.returncode == 2 and "run an experiment first" in out.stderr


def test_report_formats(populated, tmp_path):
    out = run_cli("report", runs_dir=populated)
    assert out.returncode == 0
    page = (populated / "report.html").read_text()
    assert 'data-experiment="off-switch-game-v0"' in page and page.count("<svg") >= 2
    js = run_cli("report", "--format", "json", "-o", "-", runs_dir=populated)
    records = json.loads(js.stdout)
    assert len(records) == 16 and {"specified", "intended", "gap"} <= set(records[0]["metrics"])
    assert records[0]["schema_version"] == 1
    csv_path = tmp_path / "out.csv"
    assert run_cli("report", "--format", "csv", "-o", str(csv_path), runs_dir=populated).returncode == 0
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 17 and "metric.specified" in lines[0] and "config.sigma" in lines[0]


def test_set_with_run_all_is_refused(tmp_path):
    runs = tmp_path / "runs"
    out = run_cli("run", "--all", "--quick", "--set", "x=1", runs_dir=runs)
    assert out.returncode == 2 and "--set applies to one experiment" in out.stderr


@pytest.mark.slow  # the whole tour (minutes); `make demo` and benchmarks/bench_tour.py run it too
def test_demo_runs_the_tour_writes_the_report_and_summarizes(tmp_path):
    runs = tmp_path / "runs"
    out = run_cli("demo", runs_dir=runs, timeout=900)
    assert out.returncode == 0, out.stderr
    assert "off-switch-game-v0" in out.stdout and "Report:" in out.stdout
    assert "specified vs intended" in out.stdout
    page = (runs / "report.html").read_text()
    assert 'data-experiment="off-switch-game-v0"' in page
