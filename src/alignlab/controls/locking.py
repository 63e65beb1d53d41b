"""One writer per workspace: an flock(2) on a lock file in the guard's state folder, re-entrant in a process.

flock locks belong to an open file description, so two guards (processes, or two Guard objects in
threads of one process, each opening the file) exclude each other, and the kernel drops the lock
when its holder dies: no stale lock file to clean up after a crash (the approach of
`flock(1)` and of git's and pip's lock files, without their PID-file staleness problem). The file
lives in the state folder, outside the workspace, so a sandboxed command cannot hold or delete it.
Within one process a thread re-entering (checkpoint -> run -> revert under one outer hold) keeps the
one flock; other threads wait on the same per-path re-entrant lock first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from pathlib import Path
from typing import Iterator

from alignlab.controls.sandbox import SandboxViolation

DEFAULT_WAIT_S = 600.0
_table_lock = threading.Lock()
_locks: dict[str, "_PathLock"] = {}


class _PathLock:
    def __init__(self) -> None:
        self.rlock = threading.RLock()
        self.depth = 0
        self.fd = -1


def holder(path: str | Path) -> str:
    """The pid written by the current holder (for messages), or '?'."""
    try:
        return Path(path).read_text().strip() or "?"
    except OSError:
        return "?"


@contextlib.contextmanager
def exclusive(path: str | Path, wait_s: float = DEFAULT_WAIT_S, what: str = "workspace") -> Iterator[None]:
    """Hold the lock file `path` exclusively; waits up to `wait_s`, then raises SandboxViolation (one line)."""
    key = os.path.abspath(path)
    with _table_lock:
        lk = _locks.setdefault(key, _PathLock())
    if not lk.rlock.acquire(timeout=max(wait_s, 0.0)):
        raise SandboxViolation(f"the {what} is in use by another guard run in this process for over {wait_s:g} s")
    try:
        if lk.depth == 0:
            fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        raise SandboxViolation(f"the {what} is locked by another guard run (pid {holder(key)}) "
                                               f"for over {wait_s:g} s; lock file {key}") from None
                    time.sleep(0.02)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            lk.fd = fd
        lk.depth += 1
    except BaseException:
        lk.rlock.release()
        raise
    try:
        yield
    finally:
        lk.depth -= 1
        if lk.depth == 0:
            fcntl.flock(lk.fd, fcntl.LOCK_UN)
            os.close(lk.fd)
            lk.fd = -1
        lk.rlock.release()
