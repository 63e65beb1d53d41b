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

from alignlab.controls.sandbox import SandboxViolation, Workspace


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

    # ------------------------------------------------------------------ scanning
    def _entry(self, dfd: int, name: str, rel: str, store: bool) -> dict:
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
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        sha = self._hash_cache.get(key)
        if sha is None or store:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
            try:
                data = b"".join(iter(lambda: os.read(fd, 1 << 20), b""))
            finally:
                os.close(fd)
            sha = hashlib.sha256(data).hexdigest()
            self._hash_cache[key] = sha
            if store:
                self._put_blob(sha, data)
        return {"type": "file", "mode": stat.S_IMODE(m), "sha256": sha, "size": st.st_size,
                "mtime_ns": st.st_mtime_ns}

    def scan(self, store: bool = False, under: str = ".") -> dict[str, dict]:
        """Every path in the workspace (or below `under`) with its state; `store` keeps file contents."""
        out: dict[str, dict] = {}
        total = 0
        top = self.ws.open_dir(under)
        try:
            for dirpath, dirnames, filenames, dfd in os.fwalk(".", dir_fd=top, follow_symlinks=False):
                base = dirpath[2:] if dirpath.startswith("./") else ""
                if under != ".":
                    base = f"{under}/{base}" if base else under
                for name in list(dirnames) + filenames:
                    rel = f"{base}/{name}" if base else name
                    if rel.split("/")[0] in self.ws.forbidden:
                        if name in dirnames:
                            dirnames.remove(name)
                        continue
                    out[rel] = e = self._entry(dfd, name, rel, store)
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
            return self._entry(dfd, name, rel, store)
        finally:
            os.close(dfd)

    # ------------------------------------------------------------------ creating
    def _put_blob(self, sha: str, data: bytes) -> None:
        path = self.folder / "blobs" / sha[:2] / sha
        if path.exists():
            return
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f"{sha}.tmp{os.getpid()}")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _blob(self, sha: str) -> bytes:
        data = (self.folder / "blobs" / sha[:2] / sha).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            raise SandboxViolation(f"checkpoint blob {sha[:12]} is corrupted")
        return data

    def create(self, paths: list[str] | None = None, label: str = "") -> str:
        """Record the current state of `paths` (and their ancestors), or of the whole workspace if None."""
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
        """Restore the workspace (or only `paths`) to its state just before checkpoint `cid`'s mutation."""
        target = self.manifest(cid)
        if target["workspace"] != str(self.ws.root):
            raise SandboxViolation(f"checkpoint {cid} belongs to workspace {target['workspace']}")
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
        """Paths matching `predicate` whose state differs now from whole-workspace checkpoint `cid`."""
        before = self.manifest(cid)["entries"]
        now = self.scan()
        keys = ("type", "mode", "sha256", "target")
        out = [r for r in set(before) | set(now) if predicate(r) and
               any(before.get(r, {"type": "absent"}).get(k) != now.get(r, {"type": "absent"}).get(k) for k in keys)]
        return sorted(out)
