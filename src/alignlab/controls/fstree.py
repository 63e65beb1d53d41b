"""Descriptor-relative tree walks, removals and atomic swaps that no name, depth or symlink can derail.

Every operation goes through directory descriptors with O_NOFOLLOW (the openat(2) discipline of
libpathrs and of openat2's RESOLVE_NO_SYMLINKS), so a symlink swapped in for a folder is never
followed, and any name the kernel accepts (newlines, leading dashes, non-UTF-8 bytes, 255-byte
components) is handled as it is: nothing is parsed or checked lexically. Walks are iterative and
keep at most two descriptors open: a child is entered with openat(name), the walk climbs back with
openat("..") and checks that it reached the same (device, inode) it left, so a tree deeper than
Python's recursion limit, PATH_MAX or the open-files limit is still walked (os.fwalk and
shutil.rmtree recurse in Python 3.11 and hold one descriptor per level). Swaps use renameat2(2)
with RENAME_EXCHANGE (Linux 3.15; two names trade places in one step, whatever their types).
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from typing import Callable, Iterator

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


class TreeError(OSError):
    """The tree changed under a walk (a folder was swapped while it was being read)."""


def open_dir(dfd: int, name: str) -> int:
    """openat(dfd, name) as a real folder: a symlink or a file there raises OSError."""
    return os.open(name, O_DIR, dir_fd=dfd)


def open_path(root_fd: int, parts: list[str] | tuple[str, ...]) -> int:
    """The folder at `parts` below root_fd, entered one component at a time (no symlink followed)."""
    fd = os.dup(root_fd)
    try:
        for name in parts:
            nxt = open_dir(fd, name)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def walk(top_fd: int, descend: Callable[[str, os.stat_result], bool] | None = None,
         leave: Callable[[int, str, str], None] | None = None) -> Iterator[tuple[str, int, str, os.stat_result]]:
    """Yield (relative path, parent descriptor, name, lstat) for everything below top_fd, parents first.

    Folders are entered unless `descend(rel, st)` says no; `leave(parent_fd, name, rel)` runs after a
    folder's contents were walked, back in its parent (where a post-order removal rmdirs it). The parent
    descriptor is valid until the next item.
    """
    cur = os.dup(top_fd)
    try:
        frames = [("", iter(sorted(os.listdir(cur))), _ident(cur), "")]
        while frames:
            prefix, names, ident, dname = frames[-1]
            name = next(names, None)
            if name is None:
                frames.pop()
                if not frames:
                    break
                up = os.open("..", O_DIR, dir_fd=cur)
                if _ident(up) != frames[-1][2]:
                    os.close(up)
                    raise TreeError(errno.ESTALE, "folder moved during the walk", prefix.rstrip("/"))
                os.close(cur)
                cur = up
                if leave is not None:
                    leave(cur, dname, prefix.rstrip("/"))
                continue
            rel = prefix + name
            try:
                st = os.stat(name, dir_fd=cur, follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield rel, cur, name, st
            if not stat.S_ISDIR(st.st_mode) or (descend is not None and not descend(rel, st)):
                continue
            try:
                child = open_dir(cur, name)
            except (FileNotFoundError, NotADirectoryError, OSError) as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    continue
                raise
            try:
                names_below = sorted(os.listdir(child))
            except BaseException:
                os.close(child)
                raise
            os.close(cur)
            cur = child
            frames.append((rel + "/", iter(names_below), _ident(cur), name))
    finally:
        os.close(cur)


def copy_fd(src: int, dst: int, chunk: int = 1 << 20) -> None:
    """Copy what is left of descriptor `src` into `dst`; a short write is resumed, never dropped."""
    while data := os.read(src, chunk):
        view = memoryview(data)
        while view:
            view = view[os.write(dst, view):]


def remove(dfd: int, name: str) -> None:
    """Remove `name` in dfd whatever it is (a folder with everything below it, depth-first, no symlink followed)."""
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dfd)
        return
    if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:  # a folder made unreadable (not a problem for root)
        os.chmod(name, 0o700, dir_fd=dfd)
    try:
        top = open_dir(dfd, name)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):  # swapped for a file or a link since the stat
            os.unlink(name, dir_fd=dfd)
            return
        raise
    try:
        def leave(parent: int, child: str, rel: str) -> None:
            os.rmdir(child, dir_fd=parent)

        for _, parent, child, cst in walk(top, leave=leave):
            if not stat.S_ISDIR(cst.st_mode):
                os.unlink(child, dir_fd=parent)
            elif stat.S_IMODE(cst.st_mode) & 0o700 != 0o700:
                os.chmod(child, 0o700, dir_fd=parent)
    finally:
        os.close(top)
    os.rmdir(name, dir_fd=dfd)


def renameat2(olddfd: int, old: str, newdfd: int, new: str, flags: int = 0) -> None:
    """renameat2(2); raises OSError (EINVAL where the filesystem does not support `flags`)."""
    if _libc.renameat2(olddfd, os.fsencode(old), newdfd, os.fsencode(new), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), new)


def exchange(olddfd: int, old: str, newdfd: int, new: str) -> bool:
    """Trade `old` and `new` in one step; True if done, False where the filesystem cannot (EINVAL)."""
    try:
        renameat2(olddfd, old, newdfd, new, RENAME_EXCHANGE)
        return True
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            return False
        raise


class Cursor:
    """A descriptor that moves through one tree by path parts (down with openat, up with '..'), one fd open.

    `create` makes missing folders (mode 0700; the caller sets the final mode) on the way down.
    """

    def __init__(self, root_fd: int, create: bool = False):
        self.fd = os.dup(root_fd)
        self.parts: list[str] = []
        self.idents = [_ident(self.fd)]
        self.create = create

    def goto(self, parts: list[str] | tuple[str, ...]) -> int:
        parts = list(parts)
        common = len(self.parts)
        if parts[:common] != self.parts:  # not below where the cursor is: find the shared prefix
            common, limit = 0, min(len(parts), len(self.parts))
            while common < limit and parts[common] == self.parts[common]:
                common += 1
        while len(self.parts) > common:
            up = os.open("..", O_DIR, dir_fd=self.fd)
            self.idents.pop()
            self.parts.pop()
            if _ident(up) != self.idents[-1]:
                os.close(up)
                raise TreeError(errno.ESTALE, "folder moved under the cursor", "/".join(self.parts))
            os.close(self.fd)
            self.fd = up
        for name in parts[common:]:
            try:
                nxt = open_dir(self.fd, name)
            except FileNotFoundError:
                if not self.create:
                    raise
                os.mkdir(name, 0o700, dir_fd=self.fd)
                nxt = open_dir(self.fd, name)
            os.close(self.fd)
            self.fd = nxt
            self.parts.append(name)
            self.idents.append(_ident(nxt))
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Cursor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
