"""The runner: grid x seeds, resume, fresh, failing cells, SIGKILL safety, Ray equivalence."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter

import pytest

from alignlab.core import runner
from alignlab.core.config import apply_overrides
from alignlab.core.store import Store
from alignlab.experiments.off_switch_game import OffSwitchConfig
from tests.conftest import ALIGNLAB, cli_env
from tests.plugins.slow_grid import SlowGridConfig


def small_off_switch() -> OffSwitchConfig:
    return apply_overrides(OffSwitchConfig.quick(), ["sigmas=0.5,2", "betas=0,1", "belief_scales=1", "mc_samples=2000"])


def test_run_stores_one_record_per_cell_and_resumes(runs_dir):
    s1 = runner.run("off-switch-game", small_off_switch(), seeds=2, workers=1, runs_dir=runs_dir)
    assert (s1.total, s1.ok, s1.failed, s1.skipped) == (16, 16, 0, 0)
    s2 = runner.run("off-switch-game", small_off_switch(), seeds=3, workers=1, runs_dir=runs_dir)
    assert (s2.total, s2.skipped, s2.ok) == (24, 16, 8)  # only the new seed ran
    with Store(runs_dir) as store:
        recs = store.records()
        assert len(recs) == 24 == store.count()
        assert {r.experiment for r in recs} == {"off-switch-game-v0"}
        assert all(set(r.metrics) >= {"specified", "intended", "gap"} for r in recs)


def test_fresh_reruns_and_replaces_without_duplicates(runs_dir):
    runner.run("off-switch-game", small_off_switch(), seeds=1, workers=1, runs_dir=runs_dir)
    s = runner.run("off-switch-game", small_off_switch(), seeds=1, workers=1, runs_dir=runs_dir, fresh=True)
    assert s.ok == 8 and s.skipped == 0
    with Store(runs_dir) as store:
        assert store.count() == 8


def test_a_failing_cell_is_recorded_with_its_traceback_and_the_sweep_goes_on(runs_dir):
    cfg = SlowGridConfig(cells=6, sleep_s=0.0, fail_every=3)
    s = runner.run("test-slow-grid", cfg, seeds=1, workers=2, runs_dir=runs_dir)
    assert (s.ok, s.failed) == (4, 2)
    with Store(runs_dir) as store:
        failed = [r for r in store.records() if r.status == "error"]
    assert len(failed) == 2
    assert all("fails on purpose" in r.error and "Traceback" in r.traceback for r in failed)
    # failed cells are retried on the next run; done cells are not
    s2 = runner.run("test-slow-grid", cfg, seeds=1, workers=1, runs_dir=runs_dir)
    assert (s2.skipped, s2.failed) == (4, 2)
    with Store(runs_dir) as store:
        assert store.count() == 6


def _count(runs_dir) -> int:
    try:
        conn = sqlite3.connect(f"file:{runs_dir / 'alignlab.sqlite'}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _alive_in_group(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_sigkill_mid_sweep_loses_nothing_done_and_resume_completes_without_duplicates(runs_dir):
    cells = 48
    cmd = ALIGNLAB + ["--runs-dir", str(runs_dir), "run", "test-slow-grid", "--seeds", "1",
                      "--set", f"cells={cells}", "--set", "sleep_s=0.1", "--workers", "2"]
    counts = []
    for kill_at in (4, 20):
        proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.time() + 120
        while _count(runs_dir) < kill_at and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # the runner itself, mid-sweep
        proc.wait()
        # its orphaned pool workers notice and exit by themselves within a second
        deadline = time.time() + 10
        while _alive_in_group(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive_in_group(proc.pid), "pool workers outlived the killed runner"
        counts.append(_count(runs_dir))
    assert counts[0] >= 4 and counts[-1] < cells, f"the kills did not land mid-sweep: {counts}"
    done = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{counts[-1]} cells already stored" in done.stdout.replace("\n", " ")
    with Store(runs_dir) as store:
        assert store.integrity_check() == "ok"
        recs = store.records(latest_only=False)
        keys = Counter((r.config_hash, r.seed) for r in recs)
        assert len(keys) == cells and max(keys.values()) == 1
        assert all(r.status == "ok" for r in recs)
        runs = store.conn.execute("SELECT status FROM runs ORDER BY started").fetchall()
        assert [r[0] for r in runs] == ["running", "running", "done"]  # killed runs never closed


def test_ray_backend_gives_the_same_records_as_the_local_backend(tmp_path):
    pytest.importorskip("ray")
    cfg = small_off_switch()
    local, ray_dir = tmp_path / "local", tmp_path / "ray"
    runner.run("off-switch-game", cfg, seeds=2, workers=2, runs_dir=local)
    s = runner.run("off-switch-game", cfg, seeds=2, workers=2, backend="ray", runs_dir=ray_dir)
    assert s.ok == 16 and s.failed == 0
    with Store(local) as a, Store(ray_dir) as b:
        ra = {(r.config_hash, r.seed): r for r in a.records()}
        rb = {(r.config_hash, r.seed): r for r in b.records()}
    assert ra.keys() == rb.keys() and len(ra) == 16
    for key in ra:
        assert ra[key].metrics == rb[key].metrics
        assert ra[key].config == rb[key].config
        assert rb[key].backend == "ray" and ra[key].backend == "local"
