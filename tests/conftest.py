"""Shared fixtures: a temporary runs folder, the CLI as a subprocess, test plugins, a throwaway audit key."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tests.plugins.slow_grid  # noqa: F401  (registers test-slow-grid-v0 before collection)

REPO = Path(__file__).resolve().parents[1]
ALIGNLAB = [sys.executable, "-m", "alignlab.cli.main"]


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env["ALIGNLAB_PLUGINS"] = "tests.plugins.slow_grid"
    env["OMP_NUM_THREADS"] = "1"
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def run_cli(*args: str, runs_dir: Path | None = None, timeout: float = 300,
            **extra: str) -> subprocess.CompletedProcess:
    cmd = list(ALIGNLAB)
    if runs_dir is not None:
        cmd += ["--runs-dir", str(runs_dir)]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=cli_env(**extra), timeout=timeout,
                          cwd=str(REPO))


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture(autouse=True)
def _plugins(monkeypatch):
    importlib.import_module("tests.plugins.slow_grid")  # registers test-slow-grid-v0 in this process

    monkeypatch.setenv("ALIGNLAB_PLUGINS", "tests.plugins.slow_grid")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])))


@pytest.fixture(scope="session")
def audit_key_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("audit-key")


@pytest.fixture(autouse=True)
def _audit_key(monkeypatch, audit_key_dir):
    """Every test (and every CLI it starts) signs guard audit logs with a throwaway key: the guard reads
    ALIGNLAB_AUDIT_KEY (controls/audit.py), so nothing is ever written to ~/.alignlab/guard/audit.key."""
    monkeypatch.setenv("ALIGNLAB_AUDIT_KEY", str(audit_key_dir / "audit.key"))
