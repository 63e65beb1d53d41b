"""The sandbox for real: confined file operations, subprocess isolation and limits, checkpoints and rollback."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alignlab.controls.checkpoints import CheckpointStore
from alignlab.controls.coding_agent import tree_digest
from alignlab.controls.policy import SandboxSettings
from alignlab.controls.process import Runner, capabilities
from alignlab.controls.sandbox import SandboxViolation, Workspace, check_path

CAPS = capabilities()
needs_ns = pytest.mark.skipif(not CAPS["filesystem"], reason="no mount/PID namespaces on this machine")


# ------------------------------------------------------------------ workspace file operations
def test_workspace_round_trip_and_atomic_write_keeps_mode(tmp_path):
    ws = Workspace(tmp_path)
    ws.write_text("a/b/c.txt", "hello")
    assert ws.read_text("a/b/c.txt") == "hello" and ws.read_text("./a//b/./c.txt") == "hello"
    os.chmod(tmp_path / "a/b/c.txt", 0o750)
    ws.write_text("a/b/c.txt", "again")
    assert stat.S_IMODE((tmp_path / "a/b/c.txt").stat().st_mode) == 0o750
    assert [e.name for e in ws.listdir("a/b")] == ["c.txt"]
    assert not [p for p in (tmp_path / "a/b").iterdir() if "alignlab-tmp" in p.name]
    ws.delete("a/b/c.txt")
    assert not ws.exists("a/b/c.txt")


def test_file_size_cap(tmp_path):
    ws = Workspace(tmp_path, max_file_bytes=100)
    with pytest.raises(SandboxViolation, match="cap"):
        ws.write_text("big", "x" * 101)
    (tmp_path / "big").write_text("y" * 200)
    with pytest.raises(SandboxViolation, match="cap"):
        ws.read_text("big")


def test_forbidden_state_folder_inside_workspace(tmp_path):
    ws = Workspace(tmp_path, forbidden=(".guard",))
    (tmp_path / ".guard").mkdir()
    for p in (".guard/audit.jsonl", "./.guard/x", ".guard"):
        with pytest.raises(SandboxViolation):
            ws.write_text(p, "x")
    assert ".guard" not in [e.name for e in ws.listdir(".")]


# ------------------------------------------------------------------ fuzzing the path checks
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=40) | st.lists(st.sampled_from(["..", ".", "", "a", "b", "%2e", "\uff0e", "~", "/", "-x"]),
                                       max_size=6).map("/".join))
def test_fuzz_check_path_never_escapes(path):
    try:
        rel = check_path(path)
    except SandboxViolation:
        return
    root = Path("/nonexistent/root")
    joined = os.path.normpath(root / rel)
    assert joined.startswith(str(root) + "/"), (path, rel)
    assert ".." not in rel.split("/") and not rel.startswith("/") and "\x00" not in rel


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["a", "b", "link", "out", "..", ".", "c.txt", "f"]), min_size=1, max_size=5))
def test_fuzz_workspace_ops_never_touch_outside(tmp_path, parts):
    base = tmp_path / f"case{os.urandom(4).hex()}"
    ws_dir, outside = base / "ws", base / "outside"
    (ws_dir / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (outside / "c.txt").write_text("secret")
    (ws_dir / "link").symlink_to(outside)
    (ws_dir / "a" / "out").symlink_to("../../outside")
    ws = Workspace(ws_dir)
    path = "/".join(parts)
    for op in (lambda: ws.read_text(path), lambda: ws.write_text(path, "pwned"), lambda: ws.delete(path)):
        try:
            value = op()
        except (SandboxViolation, ValueError):
            continue
        assert value != "secret"
    assert (outside / "c.txt").read_text() == "secret" and sorted(os.listdir(outside)) == ["c.txt"]


# ------------------------------------------------------------------ subprocesses
def test_capabilities_are_reported():
    assert set(CAPS) == {"network", "filesystem"}


def run(tmp_path, argv, **kw):
    return Runner(tmp_path, SandboxSettings(network="isolate-if-available", **kw)).run(argv)


def test_environment_is_scrubbed(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "leak-me-123")
    res = run(tmp_path, [sys.executable, "-c", "import os; print(dict(os.environ))"])
    assert res.ok and "leak-me-123" not in res.stdout and "AWS_SECRET" not in res.stdout
    res = Runner(tmp_path, SandboxSettings(network="isolate-if-available", env_passthrough=("AWS_SECRET_ACCESS_KEY",))
                 ).run([sys.executable, "-c", "import os; print(os.environ['AWS_SECRET_ACCESS_KEY'])"])
    assert res.stdout.strip() == "leak-me-123"  # only when the policy names it


def test_no_network_when_isolation_is_available(tmp_path):
    code = "import socket; s = socket.socket(); s.settimeout(2); print(s.connect_ex(('1.1.1.1', 53)))"
    res = run(tmp_path, [sys.executable, "-c", code])
    assert res.isolation["network"] is CAPS["network"]
    if CAPS["network"]:
        assert res.stdout.strip() != "0"


@pytest.mark.parametrize("engine", ["bwrap", "legacy"])
def test_without_namespaces_strict_policies_fail_closed_and_lenient_ones_report_it(tmp_path, engine):
    strict = Runner(tmp_path, SandboxSettings(network="isolate", filesystem="none", engine=engine))
    strict.simulate_no_namespaces = True  # as on a machine that refuses unshare(2)
    with pytest.raises(SandboxViolation, match="requires isolation"):
        strict.run([sys.executable, "-c", "open('ran', 'w')"])
    assert not (tmp_path / "ran").exists()
    lenient = Runner(tmp_path, SandboxSettings(network="isolate-if-available", filesystem="confine-if-available",
                                               engine=engine))
    lenient.simulate_no_namespaces = True
    res = lenient.run([sys.executable, "-c", "print('ran')"])
    assert res.ok and res.isolation["network"] is False and res.isolation["filesystem"] is False


def test_timeout_kills_the_process_group(tmp_path):
    t0 = time.monotonic()
    res = run(tmp_path, [sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=1)
    assert res.timed_out and not res.ok and time.monotonic() - t0 < 6


def test_memory_limit(tmp_path):
    res = run(tmp_path, [sys.executable, "-c", "x = bytearray(1 << 30); print('allocated')"], memory_mb=256)
    assert res.returncode != 0 and "allocated" not in res.stdout and "MemoryError" in res.stderr


def test_output_cap(tmp_path):
    res = run(tmp_path, [sys.executable, "-c", "import sys\nwhile True: sys.stdout.write('x' * 65536)"],
              max_output_bytes=100_000)
    assert res.truncated and len(res.stdout) + len(res.stderr) <= 100_000


def test_file_size_limit_in_subprocess(tmp_path):
    res = run(tmp_path, [sys.executable, "-c", "open('big', 'wb').write(b'x' * 5_000_000)"], max_file_bytes=1_000_000)
    assert res.returncode != 0 and (tmp_path / "big").stat().st_size <= 1_000_000


@needs_ns
@pytest.mark.parametrize("engine", ["bwrap", "legacy"])
def test_filesystem_confined_outside_read_only_and_protected_files_read_only(tmp_path, engine):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "t.py").write_text("keep")
    code = ("import os\nfor p in ['t.py', '/usr/pwned', '/etc/pwned', %r]:\n"
            "    try:\n        open(p, 'w').write('x'); print('WROTE', p)\n"
            "    except OSError as e:\n        print('refused', p, e.errno)\n"
            "open('ok.txt', 'w').write('fine')\n"
            "open('/tmp/scratch', 'w').write('private tmp')\n"
            "print(os.listdir('/tmp'))\n" % str(tmp_path / "outside.txt"))
    res = Runner(ws, SandboxSettings(network="isolate-if-available", filesystem="confine", engine=engine),
                 readonly=(str(ws / "t.py"),)).run([sys.executable, "-c", code])
    assert res.ok, res.stderr
    assert "WROTE t.py" not in res.stdout and "WROTE /usr" not in res.stdout and "WROTE /etc" not in res.stdout
    assert (ws / "t.py").read_text() == "keep" and (ws / "ok.txt").exists()
    # /tmp (and the folders above a workspace under it) are a private tmpfs: writes there vanish
    assert not (tmp_path / "outside.txt").exists() and not Path("/tmp/scratch").exists()
    assert res.isolation["filesystem"] and res.isolation["pid_namespace"] and res.isolation["engine"] == engine


@needs_ns
def test_background_processes_die_with_the_command(tmp_path):
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(0.8)\n"
            "    open('late.txt', 'w').write('escaped')\n    os._exit(0)\nprint('parent done')\n")
    res = run(tmp_path, [sys.executable, "-c", code], filesystem="confine")
    assert res.ok
    time.sleep(1.3)
    assert not (tmp_path / "late.txt").exists()


def test_argv_must_be_a_list(tmp_path):
    for bad in ("ls -la", [], ["ok", 3], ["a\x00b"]):
        with pytest.raises(SandboxViolation):
            Runner(tmp_path, SandboxSettings()).run(bad)


# ------------------------------------------------------------------ checkpoints and rollback
def populate(root: Path) -> None:
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "a.py").write_text("a = 1\n")
    (root / "src" / "b.bin").write_bytes(os.urandom(3000))
    (root / "docs").mkdir()
    (root / "docs" / "x.md").write_text("# x\n")
    os.chmod(root / "docs" / "x.md", 0o600)
    (root / "link").symlink_to("src/pkg/a.py")
    (root / "empty").mkdir()


def test_whole_workspace_rollback_restores_byte_for_byte(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    populate(root)
    ws = Workspace(root)
    store = CheckpointStore(tmp_path / "cps", ws)
    before = tree_digest(root)
    mtimes = {p: (root / p).lstat().st_mtime_ns for p in before}
    cp = store.create(None, "everything")
    ws.write_text("src/pkg/a.py", "a = 2\n")
    ws.write_text("new/deep/file.txt", "new")
    ws.delete("docs/x.md")
    os.chmod(root / "src" / "b.bin", 0o777)
    (root / "link").unlink()
    (root / "link").symlink_to("/etc/passwd")
    os.rmdir(root / "empty")
    (root / "empty").write_text("now a file")
    assert tree_digest(root) != before
    store.rollback(cp)
    assert tree_digest(root) == before
    assert {p: (root / p).lstat().st_mtime_ns for p in before if not (root / p).is_symlink()} == \
        {p: t for p, t in mtimes.items() if not (root / p).is_symlink()}


def test_rollback_to_a_middle_checkpoint_and_per_file(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    populate(root)
    ws = Workspace(root)
    store = CheckpointStore(tmp_path / "cps", ws)
    states = [tree_digest(root)]
    edits = [("src/pkg/a.py", "v1"), ("new/n.txt", "n1"), ("src/pkg/a.py", "v2"), ("docs/x.md", "changed")]
    cps = []
    for path, text in edits:
        cps.append(store.create([path], f"write {path}"))
        ws.write_text(path, text)
        states.append(tree_digest(root))
    store.rollback(cps[2])  # back to just before the third edit
    assert tree_digest(root) == states[2]
    store.rollback(cps[0], paths=["new"])  # only the new folder: gone again
    assert not (root / "new").exists() and ws.read_text("src/pkg/a.py") == "v1"
    store.rollback(cps[0])
    assert tree_digest(root) == states[0]


def test_changed_detects_protected_paths(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    populate(root)
    store = CheckpointStore(tmp_path / "cps", Workspace(root))
    cp = store.create(None)
    (root / "docs" / "x.md").write_text("edited")
    (root / "docs" / "y.md").write_text("new")
    (root / "src" / "pkg" / "a.py").write_text("ok to change")
    assert store.changed(cp, lambda r: r.startswith("docs/")) == ["docs/x.md", "docs/y.md"]


def test_checkpoint_blob_corruption_is_refused(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "f").write_text("original")
    store = CheckpointStore(tmp_path / "cps", Workspace(root))
    cp = store.create(["f"])
    (root / "f").write_text("changed")
    for blob in (tmp_path / "cps" / "blobs").rglob("*"):
        if blob.is_file():
            blob.write_text("corrupt")
    with pytest.raises(SandboxViolation, match="corrupted"):
        store.rollback(cp)


def test_cgroup_limits_are_written_from_one_table_for_v1_and_v2(tmp_path):
    from alignlab.controls.cgroups import _apply

    v2, v1 = tmp_path / "v2", tmp_path / "v1"
    v2.mkdir()
    v1.mkdir()
    (v2 / "memory.swap.max").write_text("max")  # best-effort files are written only where the kernel has them
    assert _apply(str(v2), "v2", "memory", 1 << 30) == "cgroup v2 memory.max=1073741824"
    assert (v2 / "memory.max").read_text() == "1073741824" and (v2 / "memory.swap.max").read_text() == "0"
    assert _apply(str(v2), "v2", "cpu", 1.5) == "cgroup v2 cpu.max=1.5 CPUs"
    assert (v2 / "cpu.max").read_text() == "150000 100000"
    assert _apply(str(v1), "v1", "cpu", 0.5) == "cgroup v1 cpu.cfs_quota_us=0.5 CPUs"
    assert (v1 / "cpu.cfs_period_us").read_text() == "100000" and (v1 / "cpu.cfs_quota_us").read_text() == "50000"
    assert _apply(str(v1), "v1", "memory", 4096) == "cgroup v1 memory.limit_in_bytes=4096"
    assert not (v1 / "memory.memsw.limit_in_bytes").exists()
    (v1 / "pids.max").mkdir()  # a required write that fails: the limit is not claimed
    assert _apply(str(v1), "v1", "pids", 64) is None
