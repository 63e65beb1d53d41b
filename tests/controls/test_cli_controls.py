"""`alignlab guard run|rollback|checkpoints` and `alignlab audit show|verify`, as subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from alignlab.controls.coding_agent import tree_digest
from tests.conftest import REPO, cli_env



def al(*args: str, cwd: Path, state: Path) -> subprocess.CompletedProcess:
    # -P: python -m would put the workspace (the current folder) first on the import path, which the guard refuses
    return subprocess.run([sys.executable, "-P", "-m", "alignlab.cli.main", *args], capture_output=True, text=True,
                          cwd=str(cwd), env=cli_env(ALIGNLAB_GUARD_STATE=str(state), PYTHONPATH=str(REPO)), timeout=60)


@pytest.fixture
def repo(tmp_path):
    ws = tmp_path / "ws"
    (ws / "tests").mkdir(parents=True)
    (ws / "tests" / "test_a.py").write_text("assert True\n")
    (ws / "main.py").write_text("print('v1')\n")
    return ws, tmp_path / "state"


def test_guard_run_checkpoint_rollback_and_audit(repo):
    ws, state = repo
    before = tree_digest(ws)
    r = al("guard", "run", "default-coding", "--", "python", "-c",
           "open('main.py', 'w').write('v2'); open('new.txt', 'w').write('n'); print('agent done')",
           cwd=ws, state=state)
    assert r.returncode == 0, r.stderr
    assert "agent done" in r.stdout and "checkpoint cp-000001" in r.stderr and "network isolated: yes" in r.stderr
    assert (ws / "main.py").read_text() == "v2"
    r = al("guard", "run", "default-coding", "--", "python", "-c", "raise SystemExit(7)", cwd=ws, state=state)
    assert r.returncode == 7
    assert "cp-000002" in al("guard", "checkpoints", cwd=ws, state=state).stdout
    r = al("guard", "rollback", "cp-000001", cwd=ws, state=state)
    assert r.returncode == 0 and "new.txt" in r.stdout
    assert tree_digest(ws) == before
    show = al("audit", "show", "--tail", "0", cwd=ws, state=state)
    assert show.returncode == 0 and "rollback" in show.stdout and "chain intact" in show.stdout
    assert al("audit", "verify", cwd=ws, state=state).returncode == 0


def test_guard_run_denials_and_bad_input_are_one_line_exit_2(repo):
    ws, state = repo
    r = al("guard", "run", "default-coding", "--", "bash", "-c", "echo hi", cwd=ws, state=state)
    assert r.returncode == 2 and "denied by policy" in r.stderr and "Traceback" not in r.stderr
    r = al("guard", "run", "no-such-policy", "--", "ls", cwd=ws, state=state)
    assert r.returncode == 2 and "bundled policies" in r.stderr
    bad = ws.parent / "bad.toml"
    bad.write_text('[policy]\nname = "x"\nversion = "1"\n[budgets]\nmax_call = 1\n')
    r = al("guard", "run", str(bad), "--", "ls", cwd=ws, state=state)
    assert r.returncode == 2 and "did you mean 'max_calls'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = al("guard", "rollback", "cp-999999", cwd=ws, state=state)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_protected_test_file_change_by_a_command_is_refused_or_reverted(repo):
    ws, state = repo
    r = al("guard", "run", "default-coding", "--", "python", "-c",
           "open('test_b.py', 'w').write('assert True')\nopen('tests/test_c.py', 'w').write('x')", cwd=ws, state=state)
    assert "reverted: test_b.py" in r.stderr and not (ws / "test_b.py").exists()  # created, then reverted
    assert "Read-only file system" in r.stderr and not (ws / "tests" / "test_c.py").exists()  # refused outright


def test_audit_verify_reports_tampering_with_exit_1(repo):
    ws, state = repo
    al("guard", "run", "default-coding", "--", "python", "-c", "print('x')", cwd=ws, state=state)
    log = state / "audit.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:1] + lines[2:]))  # delete a record
    r = al("audit", "verify", cwd=ws, state=state)
    assert r.returncode == 1 and "record 1" in r.stdout
    r = al("audit", "verify", "--log", str(ws / "nope.jsonl"), cwd=ws, state=state)
    assert r.returncode == 2 and "no audit log" in r.stderr


def test_guard_heldout_runs_the_checkpoints_tests_not_the_rigged_ones(repo):
    ws, state = repo
    (ws / "main.py").write_text("def f():\n    return 1\n")
    (ws / "tests" / "test_a.py").write_text("from main import f\n\n\ndef test_f():\n    assert f() == 2\n")
    r = al("guard", "run", "default-coding", "--", "python", "-c", "print('agent done')", cwd=ws, state=state)
    assert r.returncode == 0 and "checkpoint cp-000001" in r.stderr, r.stderr
    (ws / "tests" / "test_a.py").write_text("def test_f():\n    pass\n")  # a rigged test that slipped past
    pytest_cmd = ("--", "python", "-m", "pytest", "-q", "-p", "no:cacheprovider")
    r = al("guard", "heldout", "cp-000001", *pytest_cmd, cwd=ws, state=state)
    assert r.returncode == 1 and "1 failed" in r.stdout, (r.stdout, r.stderr)
    assert "held-out run from cp-000001" in r.stderr and "Traceback" not in r.stderr
    r = al("guard", "heldout", "cp-000009", *pytest_cmd, cwd=ws, state=state)
    assert r.returncode == 2 and "cp-000009" in r.stderr and "Traceback" not in r.stderr
