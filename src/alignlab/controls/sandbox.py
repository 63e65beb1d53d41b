"""Workspace-confined file operations: lexical path checks, then race-free opens component by component.

Technique: every path is first checked lexically (no absolute paths, `..`, NUL/control
characters, backslashes, percent-encoded or Unicode-lookalike separators, shell
metacharacters, leading dashes), then opened one component at a time with
`openat(dirfd, name, O_NOFOLLOW)` from a pinned root descriptor, so a symlink swapped in
after the check is refused at open time (the approach of openat2's RESOLVE_BENEATH and
libpathrs; Python 3.11 exposes neither, hence this hand-written walk). Only regular files
with one link are read or written (FIFOs, devices, sockets, hard links to outside files are
refused), writes are atomic (temp file + rename in the same directory), sizes are capped.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path


class SandboxViolation(Exception):
    """An operation the sandbox refuses (the guard records it as a denial)."""


FORBIDDEN_CHARS = set(";|&$`<>(){}[]*?!\"'\\#")
LOOKALIKES = set("\u2215\u2044\uff0f\u29f8\u2216\uff3c\u2024\u2025\u2026\uff0e\u3002\ufe52\u0338")
PERCENT_RE = re.compile(r"%[0-9a-fA-F]{2}")
O_BASE = os.O_CLOEXEC | os.O_NOFOLLOW
O_DIR = os.O_RDONLY | os.O_DIRECTORY | O_BASE


def check_path(path: object, allow_root: bool = False) -> str:
    """Lexical validation. Returns the normalised relative path ('a/b.py'; '.' for the root)."""
    if not isinstance(path, str):
        raise SandboxViolation(f"path must be a string, got {type(path).__name__}")
    if path == "" or len(path) > 4096:
        raise SandboxViolation("empty or over-long path")
    if "\x00" in path:
        raise SandboxViolation("NUL byte in path")
    for ch in path:
        cat = unicodedata.category(ch)
        if ord(ch) < 32 or ord(ch) == 127 or cat in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"):
            raise SandboxViolation(f"control or invisible character U+{ord(ch):04X} in path")
        if ch in LOOKALIKES:
            raise SandboxViolation(f"look-alike separator U+{ord(ch):04X} in path")
        if ch in FORBIDDEN_CHARS:
            raise SandboxViolation(f"shell metacharacter or backslash {ch!r} in path")
    if unicodedata.normalize("NFKC", path) != path:
        raise SandboxViolation("path is not in Unicode NFKC normal form (look-alike characters)")
    if PERCENT_RE.search(path):
        raise SandboxViolation("percent-encoded sequence in path")
    if path.startswith("/"):
        raise SandboxViolation("absolute path: give a path relative to the workspace")
    if path.startswith("~"):
        raise SandboxViolation("home-relative path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for p in parts:
        if p == "..":
            raise SandboxViolation("'..' in path (traversal)")
        if p.startswith("-"):
            raise SandboxViolation(f"path component {p!r} starts with '-' (option injection)")
        if len(p.encode("utf-8")) > 255:
            raise SandboxViolation("path component longer than 255 bytes")
    if not parts:
        if allow_root:
            return "."
        raise SandboxViolation("path names the workspace root, not a file")
    return "/".join(parts)


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # file | dir | symlink | other
    size: int


class Workspace:
    """A directory that confined file operations cannot leave. `forbidden` paths inside it are refused too."""

    def __init__(self, root: str | Path, max_file_bytes: int = 10_000_000, forbidden: tuple[str, ...] = ()):
        real = Path(root).resolve(strict=True)
        if not real.is_dir():
            raise SandboxViolation(f"workspace {root} is not a directory")
        self.root = real
        self.max_file_bytes = max_file_bytes
        self.forbidden = tuple(forbidden)
        self._root_fd = os.open(real, O_DIR)

    def close(self) -> None:
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ resolution
    def relative(self, path: object, allow_root: bool = False) -> str:
        rel = check_path(path, allow_root)
        for f in self.forbidden:
            if rel == f or rel.startswith(f + "/"):
                raise SandboxViolation(f"path {rel!r} is reserved by the guard")
        return rel

    def canonical(self, path: object, allow_root: bool = False) -> str:
        """Lexical check plus a look at what exists now: no symlink anywhere along the path."""
        rel = self.relative(path, allow_root)
        if rel == ".":
            return rel
        parts = rel.split("/")
        fd = self._root_fd
        try:
            for i, name in enumerate(parts):
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    return rel
                if stat.S_ISLNK(st.st_mode):
                    raise SandboxViolation(f"symlink in path at {'/'.join(parts[:i + 1])!r}: symlinks are not followed")
                if i < len(parts) - 1:
                    if not stat.S_ISDIR(st.st_mode):
                        raise SandboxViolation(f"{'/'.join(parts[:i + 1])!r} is not a directory")
                    nfd = os.open(name, O_DIR, dir_fd=fd)
                    if fd != self._root_fd:
                        os.close(fd)
                    fd = nfd
            return rel
        finally:
            if fd != self._root_fd:
                os.close(fd)

    def open_dir(self, rel: str, create: bool = False) -> int:
        """A descriptor for directory `rel`, walked with O_NOFOLLOW from the root (caller closes)."""
        fd = os.dup(self._root_fd)
        if rel == ".":
            return fd
        walked = []
        for name in rel.split("/"):
            walked.append(name)
            try:
                nfd = os.open(name, O_DIR, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    raise SandboxViolation(f"no such directory {'/'.join(walked)!r}") from None
                os.mkdir(name, 0o755, dir_fd=fd)
                nfd = os.open(name, O_DIR, dir_fd=fd)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise SandboxViolation(f"{'/'.join(walked)!r} is a symlink or not a directory") from None
                raise SandboxViolation(f"cannot open {'/'.join(walked)!r}: {exc.strerror}") from None
            os.close(fd)
            fd = nfd
        return fd

    def _split(self, path: object) -> tuple[str, str]:
        rel = self.relative(path)
        parent, _, name = rel.rpartition("/")
        return parent or ".", name

    # ------------------------------------------------------------------ operations
    def read_bytes(self, path: object) -> bytes:
        parent, name = self._split(path)
        dfd = self.open_dir(parent)
        try:
            before = self._lstat(dfd, name, path)
            if before is None:
                raise SandboxViolation(f"no such file {path!r}")
            self._require_regular(before, path)
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | O_BASE, dir_fd=dfd)
            except OSError as exc:
                raise SandboxViolation(f"cannot open {path!r}: {exc.strerror}") from None
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
                    raise SandboxViolation(f"{path!r} was replaced between check and open")
                self._require_regular(st, path)
                chunks, total = [], 0
                while True:
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > self.max_file_bytes:
                        raise SandboxViolation(f"{path!r} exceeds the {self.max_file_bytes}-byte file cap")
                    chunks.append(chunk)
                return b"".join(chunks)
            finally:
                os.close(fd)
        finally:
            os.close(dfd)

    def read_text(self, path: object) -> str:
        data = self.read_bytes(path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SandboxViolation(f"{path!r} is not UTF-8 text") from None

    def write_bytes(self, path: object, data: bytes, mode: int | None = None) -> None:
        if len(data) > self.max_file_bytes:
            raise SandboxViolation(f"write of {len(data)} bytes exceeds the {self.max_file_bytes}-byte file cap")
        parent, name = self._split(path)
        dfd = self.open_dir(parent, create=True)
        try:
            existing = self._lstat(dfd, name, path)
            if existing is not None:
                self._require_regular(existing, path)
                mode = stat.S_IMODE(existing.st_mode) if mode is None else mode
            tmp = f".{name[:200]}.alignlab-tmp-{os.urandom(6).hex()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_BASE, 0o600, dir_fd=dfd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fchmod(fd, 0o644 if mode is None else mode)
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                os.unlink(tmp, dir_fd=dfd)
                raise
            os.close(fd)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)  # replaces, never follows, a name swapped in
        finally:
            os.close(dfd)

    def write_text(self, path: object, text: str) -> None:
        if not isinstance(text, str):
            raise SandboxViolation(f"content must be a string, got {type(text).__name__}")
        self.write_bytes(path, text.encode("utf-8"))

    def delete(self, path: object) -> None:
        parent, name = self._split(path)
        dfd = self.open_dir(parent)
        try:
            st = self._lstat(dfd, name, path)
            if st is None:
                raise SandboxViolation(f"no such file {path!r}")
            if stat.S_ISDIR(st.st_mode):
                try:
                    os.rmdir(name, dir_fd=dfd)
                except OSError as exc:
                    raise SandboxViolation(f"cannot remove directory {path!r}: {exc.strerror}") from None
                return
            self._require_regular(st, path)
            os.unlink(name, dir_fd=dfd)
        finally:
            os.close(dfd)

    def listdir(self, path: object = ".") -> list[Entry]:
        rel = self.relative(path, allow_root=True)
        fd = self.open_dir(rel)
        try:
            out = []
            with os.scandir(fd) as it:
                for e in it:
                    if rel == "." and e.name in self.forbidden:
                        continue
                    st = e.stat(follow_symlinks=False)
                    kind = ("dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode)
                            else "symlink" if stat.S_ISLNK(st.st_mode) else "other")
                    out.append(Entry(e.name, kind, st.st_size))
            return sorted(out, key=lambda e: e.name)
        finally:
            os.close(fd)

    def walk(self) -> list[tuple[str, str]]:
        """Every (relative path, kind) below the root, not following symlinks, skipping forbidden names."""
        out = []
        fd = self.open_dir(".")
        try:
            for dirpath, dirnames, filenames, dfd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
                base = dirpath[2:] if dirpath.startswith("./") else ""
                if not base:
                    dirnames[:] = [d for d in dirnames if d not in self.forbidden]
                    filenames = [f for f in filenames if f not in self.forbidden]
                for name in dirnames + filenames:
                    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                    kind = ("dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode)
                            else "symlink" if stat.S_ISLNK(st.st_mode) else "other")
                    out.append((f"{base}/{name}" if base else name, kind))
        finally:
            os.close(fd)
        return out

    def exists(self, path: object) -> bool:
        parent, name = self._split(path)
        try:
            dfd = self.open_dir(parent)
        except SandboxViolation:
            return False
        try:
            return self._lstat(dfd, name, path) is not None
        finally:
            os.close(dfd)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _lstat(dfd: int, name: str, path: object) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    @staticmethod
    def _require_regular(st: os.stat_result, path: object) -> None:
        m = st.st_mode
        if stat.S_ISLNK(m):
            raise SandboxViolation(f"{path!r} is a symlink: symlinks are not followed")
        if stat.S_ISDIR(m):
            raise SandboxViolation(f"{path!r} is a directory")
        if not stat.S_ISREG(m):
            kind = ("FIFO" if stat.S_ISFIFO(m) else "device" if stat.S_ISCHR(m) or stat.S_ISBLK(m)
                    else "socket" if stat.S_ISSOCK(m) else "special file")
            raise SandboxViolation(f"{path!r} is a {kind}: only regular files are allowed")
        if st.st_nlink > 1:
            raise SandboxViolation(f"{path!r} has {st.st_nlink} hard links: it may alias a file outside")
