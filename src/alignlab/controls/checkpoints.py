"""Checkpoints before every mutation, and rollback to any checkpoint (per path or whole workspace).

A checkpoint stores the prior state of what will change (content-addressed blobs, file
modes, modification times, symlink targets, and which paths did not exist yet), written
atomically under the guard's state folder, outside the agent's reach. Rolling back to
checkpoint k replays checkpoints n, n-1, ..., k in reverse, so the workspace returns
byte-for-byte to its state just before mutation k. This is the undo/rollback that guard
users ask for (public issue trackers of NeMo Guardrails, the OpenAI Agents SDK and
Invariant), in the spirit of
copy-on-write snapshots as in git's object store.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Callable

from alignlab.controls import fstree, locking
from alignlab.controls import restore as restore_mod
from alignlab.controls.sandbox import SandboxViolation, Workspace


def _hash_fd(fd: int) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: os.read(fd, 1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


class CheckpointStore:
    """Checkpoints of one workspace, kept in `folder` (never inside the workspace)."""

    def __init__(self, folder: str | Path, workspace: Workspace, max_total_bytes: int = 256 << 20):
        self.folder = Path(folder)
        self.ws = workspace
        if self.folder.resolve() == workspace.root or workspace.root in self.folder.resolve().parents:
            rel = str(self.folder.resolve().relative_to(workspace.root)).split("/")[0]
            if rel not in workspace.forbidden:
                raise SandboxViolation("checkpoint folder inside the workspace must be listed as forbidden")
        (self.folder / "blobs").mkdir(parents=True, exist_ok=True)
        (self.folder / "manifests").mkdir(parents=True, exist_ok=True)
        self.max_total_bytes = max_total_bytes
        self._hash_cache: dict[tuple, str] = {}
        self.lock_wait_s = locking.DEFAULT_WAIT_S

    def locked(self):
        """Hold this workspace's lock (re-entrant): every guard run on the workspace takes it around its run."""
        return locking.exclusive(self.folder / "workspace.lock", self.lock_wait_s, f"workspace {self.ws.root}")

    # ------------------------------------------------------------------ scanning
    def _entry(self, dfd: int, name: str, store: bool, st: os.stat_result | None = None,
               want_hash: bool = True) -> dict:
        if st is None:
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                return {"type": "absent"}
        m = st.st_mode
        if stat.S_ISDIR(m):
            return {"type": "dir", "mode": stat.S_IMODE(m), "mtime_ns": st.st_mtime_ns}
        if stat.S_ISLNK(m):
            return {"type": "symlink", "target": os.readlink(name, dir_fd=dfd)}
        if stat.S_ISFIFO(m):
            return {"type": "fifo", "mode": stat.S_IMODE(m)}
        if not stat.S_ISREG(m):
            return {"type": "other"}
        out = {"type": "file", "mode": stat.S_IMODE(m), "sha256": None, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        sha = self._hash_cache.get(key)
        if (sha is None and want_hash) or store:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
            try:
                sha = self._put_blob(fd) if store else _hash_fd(fd)
            finally:
                os.close(fd)
            self._hash_cache[key] = sha
        out["sha256"] = sha
        return out

    def scan(self, store: bool = False, under: str = ".", hash_if: Callable[[str, int], bool] | None = None
             ) -> dict[str, dict]:
        """Every path in the workspace (or below `under`) with its state; `store` keeps file contents.

        Iterative, descriptor-relative (fstree.walk): any name, any depth. Only a storing scan is capped
        at `max_total_bytes` (a checkpoint that large is refused); `hash_if(rel, size)` limits hashing.
        """
        out: dict[str, dict] = {}
        total = 0
        top = self.ws.open_dir(under)
        base = "" if under == "." else under + "/"

        def descend(rel: str, st: os.stat_result) -> bool:
            return (base + rel).split("/")[0] not in self.ws.forbidden

        try:
            for rel, dfd, name, st in fstree.walk(top, descend):
                rel = base + rel
                if rel.split("/")[0] in self.ws.forbidden:
                    continue
                out[rel] = e = self._entry(dfd, name, store, st, hash_if is None or hash_if(rel, st.st_size))
                if store:
                    total += e.get("size", 0)
                    if total > self.max_total_bytes:
                        raise SandboxViolation(f"workspace exceeds {self.max_total_bytes} bytes: too large to "
                                               "checkpoint, mutation refused")
        finally:
            os.close(top)
        return out

    def _state_of(self, rel: str, store: bool) -> dict:
        parent, _, name = rel.rpartition("/")
        try:
            dfd = self.ws.open_dir(parent or ".")
        except SandboxViolation:
            return {"type": "absent"}
        try:
            return self._entry(dfd, name, store)
        finally:
            os.close(dfd)

    # ------------------------------------------------------------------ creating
    def _put_blob(self, fd: int) -> str:
        """Copy an open file into the blob store while hashing it (streamed: any size); returns its sha256."""
        blobs = self.folder / "blobs"
        tmp = blobs / f"incoming-{os.getpid()}-{os.urandom(4).hex()}"
        h = hashlib.sha256()
        try:
            with open(tmp, "wb") as fh:
                for chunk in iter(lambda: os.read(fd, 1 << 20), b""):
                    h.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            sha = h.hexdigest()
            path = blobs / sha[:2] / sha
            if not path.exists():
                path.parent.mkdir(exist_ok=True)
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return sha

    def blob_path(self, sha: str) -> Path:
        return self.folder / "blobs" / sha[:2] / sha

    def _blob(self, sha: str) -> bytes:
        data = self.blob_path(sha).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            raise SandboxViolation(f"checkpoint blob {sha[:12]} is corrupted")
        return data

    def create(self, paths: list[str] | None = None, label: str = "") -> str:
        """Record the current state of `paths` (and their ancestors), or of the whole workspace if None."""
        with self.locked():
            return self._create(paths, label)

    def _create(self, paths: list[str] | None, label: str) -> str:
        if paths is None:
            entries, scope = self.scan(store=True), "all"
        else:
            entries, scope = {}, "paths"
            for rel in paths:
                parts = rel.split("/")
                for i in range(1, len(parts) + 1):
                    sub = "/".join(parts[:i])
                    if sub not in entries:
                        entries[sub] = self._state_of(sub, store=True)
                if entries[rel]["type"] == "dir":
                    entries.update(self.scan(store=True, under=rel))
        seq = self.count() + 1
        cid = f"cp-{seq:06d}"
        manifest = {"id": cid, "seq": seq, "created": time.time(), "label": label, "scope": scope,
                    "workspace": str(self.ws.root), "entries": entries}
        path = self.folder / "manifests" / f"{cid}.json"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(manifest, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return cid

    def count(self) -> int:
        return sum(1 for _ in (self.folder / "manifests").glob("cp-*.json"))

    def list(self) -> list[dict]:
        out = []
        for p in sorted((self.folder / "manifests").glob("cp-*.json")):
            m = json.loads(p.read_text())
            out.append({k: m[k] for k in ("id", "seq", "created", "label", "scope")} | {"paths": len(m["entries"])})
        return out

    def manifest(self, cid: str) -> dict:
        path = self.folder / "manifests" / f"{cid}.json"
        if not path.exists():
            known = [c["id"] for c in self.list()]
            raise SandboxViolation(f"no checkpoint {cid!r}; known: {', '.join(known[-10:]) or '(none)'}")
        return json.loads(path.read_text())

    # ------------------------------------------------------------------ restoring
    def rollback(self, cid: str, paths: list[str] | None = None) -> list[str]:
        """Restore the workspace (or only `paths`) to its state just before checkpoint `cid`'s mutation.

        A whole-workspace checkpoint describes that state completely: it is restored directly, atomically
        (restore.py), whatever names the paths have. A per-path checkpoint is replayed from the newest.
        """
        target = self.manifest(cid)
        if target["workspace"] != str(self.ws.root):
            raise SandboxViolation(f"checkpoint {cid} belongs to workspace {target['workspace']}")
        with self.locked():
            if target["scope"] == "all":
                return self.restore(cid, None if paths is None else [self._plain(p) for p in paths])
            return self._replay(target, paths)

    def _plain(self, path: object) -> str:
        """A relative path as stored in a manifest (any name, no '..'); the guard's own folder refused."""
        if not isinstance(path, str) or not path or "\x00" in path or path.startswith("/"):
            raise SandboxViolation(f"not a relative path in the workspace: {path!r}")
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            raise SandboxViolation(f"not a relative path in the workspace: {path!r}")
        if parts[0] in self.ws.forbidden:
            raise SandboxViolation(f"path {path!r} is reserved by the guard")
        return "/".join(parts)

    def restore(self, cid: str, paths: list[str] | None = None, within: Callable[[str], bool] | None = None
                ) -> list[str]:
        """Atomically restore `paths` (and all below them; None: everything) to whole-workspace checkpoint `cid`.

        `within(rel)`: paths that may all be reverted, so a folder holding only such paths is swapped in
        one step. Returns the paths whose state changed back, sorted.
        """
        m = self.manifest(cid)
        if m["scope"] != "all":
            raise SandboxViolation(f"checkpoint {cid} covers only some paths; atomic restore needs a whole-"
                                   "workspace checkpoint")
        with self.locked():
            before = m["entries"]
            # a file whose size differs from the checkpoint's differs: it is never read (it may be huge)
            now = self.scan(hash_if=lambda rel, size: before.get(rel, {}).get("size", -1) == size)
            everything = set(before) | set(now)
            if paths is None:
                chosen = everything
            else:
                chosen = restore_mod.below_any(everything, set(paths))
            absent = restore_mod.ABSENT
            selected = {r for r in chosen if restore_mod.differs(before.get(r, absent), now.get(r, absent))}
            units = restore_mod.plan_units(before, now, selected, within)
            if units:
                restore_mod.apply(self.ws, self.blob_path, before, units)
            covered = restore_mod.below_any(everything, set(units))
            return sorted(r for r in covered if restore_mod.differs(before.get(r, absent), now.get(r, absent)))

    def restore_protected(self, cid: str, predicate: Callable[[str], bool]) -> list[str]:
        """Under the lock: the paths matching `predicate` that changed since `cid`, restored in one atomic step."""
        with self.locked():
            violations = self.changed(cid, predicate)
            if violations:
                self.restore(cid, violations, within=predicate)
            return violations

    def _replay(self, target: dict, paths: list[str] | None) -> list[str]:
        chosen = [self.ws.relative(p) for p in paths] if paths else None
        keep: Callable[[str], bool] = (lambda r: True) if chosen is None else (
            lambda r: any(r == c or r.startswith(c + "/") for c in chosen))
        touched: set[str] = set()
        for seq in range(self.count(), target["seq"] - 1, -1):
            m = self.manifest(f"cp-{seq:06d}")
            touched |= self._restore(m, keep)
        return sorted(touched)

    def _restore(self, m: dict, keep: Callable[[str], bool]) -> set[str]:
        entries = {r: e for r, e in m["entries"].items() if keep(r)}
        touched = set()
        if m["scope"] == "all":
            for rel in sorted(self.scan(), key=lambda r: -r.count("/")):
                if rel not in m["entries"] and keep(rel):
                    self._remove(rel)
                    touched.add(rel)
        by_depth = sorted(entries, key=lambda r: r.count("/"))
        for rel in reversed(by_depth):
            if entries[rel]["type"] == "absent" and self._state_of(rel, False)["type"] != "absent":
                self._remove(rel)
                touched.add(rel)
        for rel in by_depth:
            e = entries[rel]
            if e["type"] in ("absent", "other"):
                continue
            now = self._state_of(rel, False)
            same = all(now.get(k) == e.get(k) for k in ("type", "mode", "sha256", "target"))
            if not same or (e["type"] == "file" and now.get("mtime_ns") != e.get("mtime_ns")):
                self._put(rel, e, now)
                touched.add(rel)
        for rel in reversed(by_depth):  # directory mtimes last: restoring children changes them
            e = entries[rel]
            if e["type"] == "dir":
                self._utime(rel, e["mtime_ns"])
        return touched

    def _parent(self, rel: str) -> tuple[int, str]:
        parent, _, name = rel.rpartition("/")
        return self.ws.open_dir(parent or "."), name

    def _remove(self, rel: str) -> None:
        dfd, name = self._parent(rel)
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(name, dir_fd=dfd)
            else:
                os.unlink(name, dir_fd=dfd)
        except FileNotFoundError:
            pass
        finally:
            os.close(dfd)

    def _put(self, rel: str, e: dict, now: dict) -> None:
        if now["type"] not in ("absent", e["type"]) or (e["type"] in ("symlink", "fifo") and now["type"] != "absent"):
            self._remove(rel)
        dfd, name = self._parent(rel)
        try:
            if e["type"] == "dir":
                if now["type"] != "dir":
                    os.mkdir(name, e["mode"], dir_fd=dfd)
                os.chmod(name, e["mode"], dir_fd=dfd, follow_symlinks=False)
            elif e["type"] == "symlink":
                os.symlink(e["target"], name, dir_fd=dfd)
            elif e["type"] == "fifo":
                os.mkfifo(name, e["mode"], dir_fd=dfd)
            elif e["type"] == "file":
                data = self._blob(e["sha256"])
                tmp = f".{name[:200]}.alignlab-restore-{os.urandom(4).hex()}"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                             dir_fd=dfd)
                try:
                    os.write(fd, data)
                    os.fchmod(fd, e["mode"])
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.utime(tmp, ns=(e["mtime_ns"], e["mtime_ns"]), dir_fd=dfd, follow_symlinks=False)
                os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        finally:
            os.close(dfd)

    def _utime(self, rel: str, mtime_ns: int) -> None:
        try:
            dfd, name = self._parent(rel)
        except SandboxViolation:
            return
        try:
            os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        finally:
            os.close(dfd)

    def changed(self, cid: str, predicate: Callable[[str], bool]) -> list[str]:
        """Paths matching `predicate` whose state differs now from whole-workspace checkpoint `cid`.

        Only those files are hashed; a file whose size differs is changed without reading it.
        """
        before = self.manifest(cid)["entries"]
        absent = restore_mod.ABSENT

        def hash_if(rel: str, size: int) -> bool:
            b = before.get(rel, absent)
            return b["type"] == "file" and b["size"] == size and predicate(rel)

        with self.locked():
            now = self.scan(hash_if=hash_if)
        out = []
        for r in set(before) | set(now):
            if not predicate(r):
                continue
            b, n = before.get(r, absent), now.get(r, absent)
            if b["type"] == n["type"] == "file" and b.get("size") != n.get("size"):
                out.append(r)
            elif restore_mod.differs(b, n):
                out.append(r)
        return sorted(out)
