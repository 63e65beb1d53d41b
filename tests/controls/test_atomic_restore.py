"""The protected-path revert as an attacker sees it: hostile names, sizes, depths, symlinks, concurrent runs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from alignlab.controls import fstree, locking
from alignlab.controls.checkpoints import CheckpointStore
from alignlab.controls.coding_agent import tree_digest
from alignlab.controls.policy import load
from alignlab.controls.restore import STAGE_PREFIX, plan_units
from alignlab.controls.sandbox import SandboxViolation, Workspace

PROTECTED = load("default-coding").is_protected
HOSTILE = ["new\nline.py", "-rf", "--help.py", "t\u0065\u0301st_\u00fc.py", "x" * 252 + ".py", " lead space.py",
           "back\\slash.py", "$(touch pwned).py", "\udcff-not-utf8.py"]


def make(tmp_path: Path, files: dict[str, str] | None = None) -> tuple[Path, CheckpointStore]:
    root = tmp_path / "ws"
    (root / "tests").mkdir(parents=True)
    (root / "calc").mkdir()
    (root / "calc/stats.py").write_text("def median(xs):\n    return 0\n")
    (root / "tests/test_stats.py").write_text("def test_ok():\n    assert True\n")
    for rel, text in (files or {}).items():
        os.makedirs(os.path.dirname(root / rel), exist_ok=True)
        Path(root / rel).write_text(text)
    return root, CheckpointStore(tmp_path / "state" / "checkpoints", Workspace(root))


def leftovers(root: Path) -> list[str]:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return [rel for rel, _, name, _ in fstree.walk(fd) if name.startswith(STAGE_PREFIX)]
    finally:
        os.close(fd)


def test_hostile_names_are_restored_exactly(tmp_path):
    root, store = make(tmp_path, {f"tests/{n}": f"spec {i}\n" for i, n in enumerate(HOSTILE)})
    original = tree_digest(root)
    cp = store.create(label="before")
    for i, n in enumerate(HOSTILE):
        p = root / "tests" / n
        if i % 3 == 0:
            p.unlink()
        else:
            p.write_text("rigged\n")
        (root / "tests" / f"n{i}{n[:200]}").write_text("planted\n")
    (root / "calc/stats.py").write_text("def median(xs):\n    return 1\n")  # the code: not protected, kept
    violations = store.restore_protected(cp, PROTECTED)
    assert len(violations) == 2 * len(HOSTILE)
    after = tree_digest(root)
    assert {k: v for k, v in after.items() if k != "calc/stats.py"} == \
           {k: v for k, v in original.items() if k != "calc/stats.py"}
    assert (root / "calc/stats.py").read_text().endswith("return 1\n")
    assert not leftovers(root)


def test_a_protected_folder_is_swapped_in_one_step(tmp_path):
    root, store = make(tmp_path, {"tests/a/test_a.py": "a\n", "tests/test_b.py": "b\n"})
    cp = store.create()
    before = store.manifest(cp)["entries"]
    (root / "tests/test_b.py").write_text("rigged\n")
    (root / "tests/a/conftest.py").write_text("rigged\n")
    changed = set(store.changed(cp, PROTECTED))
    assert changed == {"tests/test_b.py", "tests/a/conftest.py"}
    assert plan_units(before, store.scan(), changed, PROTECTED) == ["tests"]  # one rename for both
    assert plan_units(before, store.scan(), changed) == ["tests/a/conftest.py", "tests/test_b.py"]
    ino = os.stat(root / "tests").st_ino
    store.restore_protected(cp, PROTECTED)
    assert os.stat(root / "tests").st_ino != ino and not (root / "tests/a/conftest.py").exists()
    assert (root / "tests/test_b.py").read_text() == "b\n"


def test_a_huge_file_is_compared_by_size_and_removed_without_being_read(tmp_path):
    root, store = make(tmp_path)
    store.max_total_bytes = 1 << 20  # the old scan refused to compare a workspace larger than this
    cp = store.create()
    with open(root / "tests/test_stats.py", "wb") as fh:
        fh.truncate(64 << 30)  # a sparse 64 GiB file: hashing it would take minutes
    started = time.monotonic()
    assert store.restore_protected(cp, PROTECTED) == ["tests/test_stats.py"]
    assert time.monotonic() - started < 5
    assert (root / "tests/test_stats.py").read_text() == "def test_ok():\n    assert True\n"


def _deep(dfd: int, depth: int, leaf: str = "f.py") -> None:
    fd = os.dup(dfd)
    for _ in range(depth):
        os.mkdir("dddd", dir_fd=fd)
        nxt = fstree.open_dir(fd, "dddd")
        os.close(fd)
        fd = nxt
    os.close(os.open(leaf, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)


def test_a_deep_tree_planted_or_checkpointed_is_restored(tmp_path):
    depth = 1001  # beyond Python's recursion limit, PATH_MAX (4096) and the 4096-byte path check
    root, store = make(tmp_path)
    fd = os.open(root / "tests", os.O_RDONLY | os.O_DIRECTORY)
    _deep(fd, depth)
    os.close(fd)
    try:
        original = tree_digest(root)
        cp = store.create()
        assert max(r.count("/") for r in store.manifest(cp)["entries"]) == depth + 1
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        fstree.remove(fd, "tests")  # the agent deletes the deep tree ...
        os.mkdir("tests", dir_fd=fd)
        tests = fstree.open_dir(fd, "tests")
        _deep(tests, depth, "planted.py")  # ... and plants a deep tree of its own
        os.close(tests)
        os.close(fd)
        assert store.restore_protected(cp, PROTECTED)
        assert tree_digest(root) == original and not leftovers(root)
    finally:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        fstree.remove(fd, "tests")  # shutil.rmtree (pytest's cleanup) recurses and cannot remove this tree
        os.close(fd)


def test_symlinks_swapped_in_loops_and_a_folder_replaced_by_a_file(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep me\n")
    root, store = make(tmp_path, {"tests/sub/test_c.py": "c\n", "src/pkg/conftest.py": "fixture\n"})
    original = tree_digest(root)
    cp = store.create()
    (root / "tests/test_stats.py").unlink()
    (root / "tests/test_stats.py").symlink_to(outside / "secret")  # a symlink for a protected file
    (root / "tests/loop").symlink_to("loop")  # a symlink loop
    os.rename(root / "tests/sub", tmp_path / "moved")
    (root / "tests/sub").write_text("a file where the folder was\n")
    os.rename(root / "src/pkg", tmp_path / "moved-pkg")
    (root / "src/pkg").symlink_to(outside)  # an unprotected folder swapped for a symlink: its conftest is lost
    assert store.restore_protected(cp, PROTECTED)
    assert tree_digest(root) == original
    assert (outside / "secret").read_text() == "keep me\n" and sorted(os.listdir(outside)) == ["secret"]
    # The whole protected folder swapped for a symlink to outside, then a symlink to itself.
    for target in (outside, Path("tests")):
        os.rename(root / "tests", tmp_path / f"gone-{target.name}")
        (root / "tests").symlink_to(target)
        assert store.restore_protected(cp, PROTECTED)
        assert tree_digest(root) == original and sorted(os.listdir(outside)) == ["secret"]


def test_a_corrupt_blob_fails_before_anything_is_swapped(tmp_path):
    root, store = make(tmp_path, {"tests/test_b.py": "b\n"})
    cp = store.create()
    (root / "tests/test_stats.py").write_text("rigged 1\n")
    (root / "tests/test_b.py").write_text("rigged 2\n")
    sha = store.manifest(cp)["entries"]["tests/test_b.py"]["sha256"]
    store.blob_path(sha).write_bytes(b"tampered")
    rigged = tree_digest(root)
    with pytest.raises(SandboxViolation, match="corrupted"):
        store.restore_protected(cp, PROTECTED)
    assert tree_digest(root) == rigged and not leftovers(root)  # all or nothing: nothing


def test_rollback_with_a_hostile_violation_name_does_not_stop_half_way(tmp_path):
    root, store = make(tmp_path)
    cp = store.create()
    (root / "tests/new\nline.py").write_text("x\n")
    (root / "tests/test_stats.py").write_text("rigged\n")
    violations = store.changed(cp, PROTECTED)
    assert store.rollback(cp, violations) == sorted(violations)  # the guard's call, names as found on disk
    assert not (root / "tests/new\nline.py").exists()
    assert "assert True" in (root / "tests/test_stats.py").read_text()


def test_two_guards_on_one_workspace_take_turns(tmp_path):
    root, store_a = make(tmp_path)
    store_b = CheckpointStore(tmp_path / "state" / "checkpoints", Workspace(root))  # a second guard, same state
    original = tree_digest(root)
    errors: list[BaseException] = []
    ids: list[str] = []

    def guard_run(store: CheckpointStore, tag: str) -> None:
        try:
            for i in range(6):
                with store.locked():  # what every guard run holds from checkpoint to revert
                    cp = store.create(label=tag)
                    ids.append(cp)
                    (root / "tests/test_stats.py").write_text(f"rigged by {tag} {i}\n")
                    (root / "tests" / f"{tag}{i}.py").write_text("planted\n")
                    time.sleep(0.005)
                    assert store.restore_protected(cp, PROTECTED)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=guard_run, args=(s, t)) for s, t in ((store_a, "a"), (store_b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(set(ids)) == 12  # no two runs wrote the same checkpoint
    assert tree_digest(root) == original


def test_a_lock_held_by_another_process_waits_then_fails_with_one_line(tmp_path):
    root, store = make(tmp_path)
    lock = tmp_path / "state" / "checkpoints" / "workspace.lock"
    code = ("import sys, time\nfrom alignlab.controls import locking\n"
            f"with locking.exclusive({str(lock)!r}):\n    print('held', flush=True)\n"
            "    time.sleep(float(sys.argv[1]))\n")
    holder = subprocess.Popen([sys.executable, "-c", code, "0.6"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        store.lock_wait_s = 0.1
        with pytest.raises(SandboxViolation, match=rf"locked by another guard run \(pid {holder.pid}\)"):
            store.create()
        store.lock_wait_s = 30
        started = time.monotonic()
        store.create()  # waits for the other run, then goes ahead
        assert time.monotonic() - started > 0.1
    finally:
        holder.wait(timeout=30)
    with locking.exclusive(lock), store.locked():  # re-entrant within one thread
        store.create()
