"""Atomic restore from a whole-workspace checkpoint: stage every unit first, then swap each in with renameat2.

The revert of what a command changed must not stop half-way: a hostile name, a huge file, a deep
tree, a symlink swapped in for a protected file or folder, a folder replaced by a file, or a second
guard on the same workspace. So (the staging-then-rename pattern of atomic deploys, e.g. Capistrano's
`current` symlink swap and systemd's `RENAME_EXCHANGE` use in its tmpfiles):

1. plan: each selected path that differs from the checkpoint is a *unit*; a unit climbs to its parent
   while the parent is not a real folder now (it cannot hold the restored child), and, given `within`,
   while every entry below the parent may be reverted (so `tests/` is one unit, swapped in one step);
2. stage: every unit is built from the checkpoint's blobs (hash-checked while copied, streamed) in a
   fresh staging folder beside it, so on the same filesystem; any failure here (corrupt blob, full disk)
   removes the staging folders and leaves the workspace as it was;
3. swap: renameat2(RENAME_EXCHANGE) puts the staged unit in place and the agent's version into the
   staging folder in one step (RENAME_NOREPLACE moves where one side is absent; where a filesystem
   lacks RENAME_EXCHANGE, two renames: the path is briefly absent, never half-written); the staging
   folder, holding the agent's version, is then removed.

Everything goes through descriptors (fstree), never through a path string, so names are never
parsed. The caller holds the workspace lock (locking.py).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

from alignlab.controls import fstree
from alignlab.controls.sandbox import SandboxViolation, Workspace

BlobPath = Callable[[str], Path]  # sha256 -> the checkpoint store's file holding that content

STAGE_PREFIX = ".alignlab-restore-"
ABSENT = {"type": "absent"}
KEYS = ("type", "mode", "sha256", "target")


def differs(b: dict, n: dict) -> bool:
    return any(b.get(k) != n.get(k) for k in KEYS)



def _parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def below_any(paths: set[str], roots: set[str]) -> set[str]:
    """The paths equal to or below one of `roots` (parents first: linear in the total path length)."""
    out: set[str] = set()
    for r in sorted(paths, key=lambda r: r.count("/")):
        if r in roots or _parent(r) in out:
            out.add(r)
    return out


def plan_units(before: dict[str, dict], now: dict[str, dict], selected: set[str],
               within: Callable[[str], bool] | None = None) -> list[str]:
    """The disjoint paths to swap in whole so that every selected path that differs gets its checkpoint state."""
    mixed: set[str] = set()  # folders with something below them that `within` does not cover
    if within is not None:
        for r in sorted(set(before) | set(now), key=lambda r: -r.count("/")):
            if r in mixed or not within(r):
                mixed.add(_parent(r))
    def climbs(x: str) -> bool:
        if "/" not in x:
            return False
        parent = _parent(x)
        if now.get(parent, ABSENT)["type"] != "dir":
            return True  # a file, a symlink or nothing where the folder was: restore the folder
        # everything below may be reverted: one swap for the whole folder
        return within is not None and before.get(parent, ABSENT)["type"] == "dir" and parent not in mixed

    unit_of: dict[str, str] = {}  # memoised: each path is climbed through once (deep trees stay linear)
    for p in selected:
        if not differs(before.get(p, ABSENT), now.get(p, ABSENT)):
            continue
        chain, x = [], p
        while x not in unit_of and climbs(x):
            chain.append(x)
            x = _parent(x)
        top = unit_of.get(x, x)
        for c in [*chain, x]:
            unit_of[c] = top
    units, last = [], None
    for u in sorted({unit_of[p] for p in selected if p in unit_of}, key=lambda r: r.split("/")):
        if last is None or not u.startswith(last + "/"):  # in this order a folder's descendants follow it
            units.append(u)
            last = u
    return sorted(units)


def _copy_blob(blob_path: BlobPath, e: dict, dfd: int, name: str) -> None:
    sha = e["sha256"]
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
    try:
        h = hashlib.sha256()
        try:
            src = open(blob_path(sha), "rb")
        except FileNotFoundError:
            raise SandboxViolation(f"checkpoint blob {sha[:12]} is missing") from None
        with src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                os.write(fd, chunk)
        if h.hexdigest() != sha:
            raise SandboxViolation(f"checkpoint blob {sha[:12]} is corrupted")
        os.fchmod(fd, e["mode"])
        os.fsync(fd)
        os.utime(fd, ns=(e["mtime_ns"], e["mtime_ns"]))
    finally:
        os.close(fd)


def _build(blob_path: BlobPath, before: dict[str, dict], unit: str, sfd: int) -> None:
    """Write the checkpoint's state of `unit` (and all below it) into folder sfd, under the unit's own name."""
    name = unit.rsplit("/", 1)[-1]
    below = sorted((r for r in before if r.startswith(unit + "/")), key=lambda r: r.split("/"))
    dirs = []
    with fstree.Cursor(sfd) as cur:
        for r in [unit, *below]:
            e = before[r]
            sub = [name, *r[len(unit) + 1:].split("/")] if r != unit else [name]
            fd = cur.goto(sub[:-1])
            leaf, t = sub[-1], e["type"]
            if t == "dir":
                os.mkdir(leaf, 0o700, dir_fd=fd)
                dirs.append((sub, e))
            elif t == "file":
                _copy_blob(blob_path, e, fd, leaf)
            elif t == "symlink":
                os.symlink(e["target"], leaf, dir_fd=fd)
            elif t == "fifo":
                os.mkfifo(leaf, 0o600, dir_fd=fd)
                os.chmod(leaf, e["mode"], dir_fd=fd)
        for sub, e in reversed(dirs):  # children first: a read-only folder is made read-only last
            fd = cur.goto(sub[:-1])
            os.chmod(sub[-1], e["mode"], dir_fd=fd)
            os.utime(sub[-1], ns=(e["mtime_ns"], e["mtime_ns"]), dir_fd=fd, follow_symlinks=False)


def _swap(root_fd: int, unit: str, stage: str, staged: bool) -> None:
    parts = unit.split("/")
    name = parts[-1]
    pfd = fstree.open_path(root_fd, parts[:-1])
    try:
        new_fd = fstree.open_path(pfd, [stage, "new"])
        old_fd = fstree.open_path(pfd, [stage, "old"])
        try:
            try:
                os.stat(name, dir_fd=pfd, follow_symlinks=False)
                present = True
            except FileNotFoundError:
                present = False
            if staged and present:
                if not fstree.exchange(new_fd, name, pfd, name):
                    fstree.renameat2(pfd, name, old_fd, name, fstree.RENAME_NOREPLACE)
                    fstree.renameat2(new_fd, name, pfd, name, fstree.RENAME_NOREPLACE)
            elif staged:
                fstree.renameat2(new_fd, name, pfd, name, fstree.RENAME_NOREPLACE)
            elif present:
                fstree.renameat2(pfd, name, old_fd, name, fstree.RENAME_NOREPLACE)
        finally:
            os.close(new_fd)
            os.close(old_fd)
        fstree.remove(pfd, stage)
    finally:
        os.close(pfd)


def apply(ws: Workspace, blob_path: BlobPath, before: dict[str, dict], units: list[str]) -> None:
    """Stage every unit, then swap each in; a failure while staging changes nothing in the workspace."""
    root_fd = ws.open_dir(".")
    stages: list[tuple[str, str]] = []
    try:
        for u in units:
            parts = u.split("/")
            pfd = fstree.open_path(root_fd, parts[:-1])
            try:
                stage = f"{STAGE_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"
                os.mkdir(stage, 0o700, dir_fd=pfd)
                stages.append((u, stage))
                for sub in ("new", "old"):
                    os.mkdir(f"{stage}/{sub}", 0o700, dir_fd=pfd)
                if before.get(u, ABSENT)["type"] not in ("absent", "other"):
                    sfd = fstree.open_path(pfd, [stage, "new"])
                    try:
                        _build(blob_path, before, u, sfd)
                    finally:
                        os.close(sfd)
            finally:
                os.close(pfd)
        for u, stage in stages:
            _swap(root_fd, u, stage, before.get(u, ABSENT)["type"] not in ("absent", "other"))
        for parent in sorted({u.rsplit("/", 1)[0] if "/" in u else "" for u in units}, key=lambda r: -r.count("/")):
            e = before.get(parent) if parent else None
            if e and e["type"] == "dir":
                try:
                    fd = fstree.open_path(root_fd, parent.split("/"))
                except OSError:
                    continue
                try:
                    os.utime(fd, ns=(e["mtime_ns"], e["mtime_ns"]))
                finally:
                    os.close(fd)
    finally:
        for u, stage in stages:  # a failed staging: remove what was built; a finished swap already did
            parts = u.split("/")
            try:
                pfd = fstree.open_path(root_fd, parts[:-1])
            except OSError:
                continue
            try:
                fstree.remove(pfd, stage)
            finally:
                os.close(pfd)
        os.close(root_fd)
