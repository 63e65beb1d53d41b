"""The workspace write quota: writes past it fail inside the sandbox, the guard reports it, the rest is synced back."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from alignlab.controls import policy as policy_mod
from alignlab.controls import quota as quota_mod
from alignlab.controls.coding_agent import tree_digest
from alignlab.controls.guard import Guard
from alignlab.controls.policy import SandboxSettings
from alignlab.controls.process import Runner, capabilities

needs_quota = pytest.mark.skipif(not capabilities()["filesystem"] or quota_mod.unavailable() is not None,
                                 reason=f"bubblewrap or the overlay quota is not available here "
                                        f"({quota_mod.unavailable()})")
MiB = 1 << 20
FILL = ("import os\nwritten = 0\ntry:\n"
        "    with open('fill.bin', 'wb') as fh:\n"
        "        for _ in range({n}):\n            fh.write(b'x' * (1 << 20)); fh.flush(); written += 1\n"
        "    print('WROTE ALL', written)\nexcept OSError as exc:\n    print('FAILED', exc.errno, written)\n")
SPRAY = ("n = 0\ntry:\n    for i in range(400):\n        open(f'f{i}', 'wb').write(b'y' * 65536); n += 1\n"
         "except OSError as exc:\n    print('FAILED', exc.errno, n)\nelse:\n    print('WROTE ALL', n)\n")


def _mounts() -> int:
    with open("/proc/self/mountinfo") as fh:
        return fh.read().count(quota_mod.PREFIX)


def _ws(tmp_path: Path, name: str = "ws") -> Path:
    ws = tmp_path / name
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg/a.py").write_text("A = 1\n")
    (ws / "pkg/gone.py").write_text("x\n")
    (ws / "old").mkdir()
    (ws / "old/inner.txt").write_text("inner\n")
    (ws / "keep.txt").write_text("keep\n")
    return ws


@needs_quota
def test_a_write_past_the_quota_fails_inside_and_is_reported(tmp_path):
    ws = _ws(tmp_path)
    res = Runner(ws, SandboxSettings(), workspace_quota_bytes=8 * MiB).run(
        [sys.executable, "-c", FILL.format(n=32)])
    assert res.stdout.startswith("FAILED 28"), res.stdout + res.stderr  # ENOSPC, inside the sandbox
    wrote = int(res.stdout.split()[-1])
    assert 4 <= wrote <= 8  # never more than the quota holds
    q = res.isolation["workspace_quota"]
    assert q["full"] and q["limit_bytes"] == 8 * MiB and res.isolation["limit_events"]["workspace_quota_full"]
    assert "workspace write quota" in res.stderr and "ENOSPC" in res.stderr
    assert "8388608 bytes written per run" in res.isolation["limits"]["disk"]
    assert (ws / "fill.bin").stat().st_size <= 8 * MiB  # what fitted, as on a full disk
    assert (ws / "keep.txt").read_text() == "keep\n" and _mounts() == 0


@needs_quota
def test_many_small_files_count_too(tmp_path):
    ws = _ws(tmp_path)
    res = Runner(ws, SandboxSettings(), workspace_quota_bytes=4 * MiB).run([sys.executable, "-c", SPRAY])
    assert res.stdout.startswith("FAILED 28") and res.isolation["workspace_quota"]["full"], res.stdout


@needs_quota
def test_changes_under_the_quota_land_exactly_as_without_it(tmp_path):
    code = ("import os, shutil\n"
            "open('pkg/a.py', 'a').write('B = 2\\n')\n"  # changed (copied up)
            "os.remove('pkg/gone.py')\n"  # deleted (a whiteout)
            "shutil.rmtree('old'); os.mkdir('old'); open('old/new.txt', 'w').write('new\\n')\n"  # an opaque folder
            "os.makedirs('made/deep/er'); open('made/deep/er/f.py', 'w').write('f\\n')\n"
            "os.symlink('pkg/a.py', 'link')\n"
            "os.chmod('keep.txt', 0o600)\n"  # metadata only
            "open('new\\nline -name.txt', 'w').write('odd\\n')\n")
    with_quota, without = _ws(tmp_path, "q"), _ws(tmp_path, "n")
    r1 = Runner(with_quota, SandboxSettings(), workspace_quota_bytes=16 * MiB).run([sys.executable, "-c", code])
    r2 = Runner(without, SandboxSettings(), workspace_quota_bytes=None).run([sys.executable, "-c", code])
    assert r1.returncode == r2.returncode == 0, r1.stderr + r2.stderr
    assert "workspace_quota" in r1.isolation and "workspace_quota" not in r2.isolation
    assert not r1.isolation["workspace_quota"]["full"]

    assert tree_digest(with_quota) == tree_digest(without)
    assert not (with_quota / "old/inner.txt").exists() and (with_quota / "old/new.txt").read_text() == "new\n"


@needs_quota
def test_the_guard_reports_a_quota_hit_and_the_quota_survives_a_timeout(tmp_path):
    ws = _ws(tmp_path)
    g = Guard.for_workspace(policy_mod.load("default-coding"), ws, tmp_path / "state", fsync=False)
    g.runner.workspace_quota_bytes = 6 * MiB
    out = g.call("run", argv=["python", "-c", SPRAY])  # files under the policy's 5 MB per-file limit
    assert out.ok and out.value["stdout"].startswith("FAILED 28")
    assert out.value["isolation"]["workspace_quota"]["full"] and "quota" in out.value["stderr"]
    # A command killed at its timeout: what it wrote is still synced back, and the tmpfs unmounted.
    code = "open('partial.txt', 'w').write('before the timeout'); import time; time.sleep(60)"
    res = Runner(ws, SandboxSettings(timeout_s=1.5), workspace_quota_bytes=4 * MiB).run(
        [sys.executable, "-c", code])
    assert res.timed_out and (ws / "partial.txt").read_text() == "before the timeout"
    assert _mounts() == 0


def test_a_quota_left_by_a_dead_guard_is_swept(tmp_path):
    stale = tmp_path / f"{quota_mod.PREFIX}{2**22 + 12345}-abc"  # above pid_max's default: no such process
    stale.mkdir()
    mine = tmp_path / f"{quota_mod.PREFIX}{os.getpid()}-abc"
    mine.mkdir()
    quota_mod.sweep(str(tmp_path))
    assert not stale.exists() and mine.exists()


def test_the_quota_is_a_policy_setting_with_one_clear_error_for_bad_values():
    from alignlab.controls.policy import PolicyError, load, loads

    head = '[policy]\nname = "p"\nversion = "1"\n[sandbox]\n'
    assert loads(head + "workspace_quota_mb = 20\n").sandbox.workspace_quota_mb == 20
    assert loads(head + "workspace_quota_mb = 0\n").sandbox.workspace_quota_mb == 0  # no quota
    assert load("strict-coding").sandbox.workspace_quota_mb < load("default-coding").sandbox.workspace_quota_mb
    for bad in ("-1", '"big"', "1.5", "true"):
        with pytest.raises(PolicyError, match=r"\[sandbox\]\.workspace_quota_mb"):
            loads(head + f"workspace_quota_mb = {bad}\n")
