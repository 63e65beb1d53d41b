"""The guard's supervisor of every exec inside the sandbox, over seccomp user notification (seccomp_unotify(2)).

The sandbox's inner stage (_sandbox_init.py) installs seccomp_bpf.build_exec_notify with a new listener and
sends the listener here over a unix socket. For each notification this thread reads the exec's path and argv
from /proc/PID/mem, opens the file the path names inside the sandbox (/proc/PID/root, symlinks resolved in
that root), validates the notification id after reading (SECCOMP_IOCTL_NOTIF_ID_VALID, as the man page says,
so a recycled PID cannot have answered for it), asks exec_rules.ExecRules, and answers: allowed, the kernel
runs the call (SECCOMP_USER_NOTIF_FLAG_CONTINUE); denied, execve fails with EPERM. Each decision is recorded in
the run's isolation report ("exec"), which the guard's audit log and outcome carry.

TOCTOU (the man page's own warning about FLAG_CONTINUE): the kernel reads the path and argv again after the
answer, and another thread sharing the target's memory can change them in between; the file at the path can
also be replaced. So this is an intent check, not a wall. Mitigations: after an allowed exec the supervisor
watches /proc/PID/exe and /proc/PID/cmdline until the exec lands and kills the process (SIGKILL through a
pidfd) if it runs another file or argv than the one checked; and the hard layers (bubblewrap's namespaces,
the seccomp deny filter, Landlock) do not depend on this check at all.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import threading
import time
from dataclasses import dataclass

from alignlab.controls import seccomp_bpf
from alignlab.controls.exec_rules import DeniedCopies, ExecRules, Target, policy_check

# linux/seccomp.h: _IOWR('!', 0, struct seccomp_notif), _IOWR('!', 1, struct seccomp_notif_resp), _IOW('!', 2, u64)
NOTIF_RECV, NOTIF_SEND, NOTIF_ID_VALID = 0xC0502100, 0xC0182101, 0x40082102
FLAG_CONTINUE = 1
_NOTIF = struct.Struct("=QIIiIQ6Q")  # id, pid, flags, data.nr, data.arch, data.instruction_pointer, data.args[6]
_RESP = struct.Struct("=QqiI")  # id, val, error, flags
AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000
RESOLVE_IN_ROOT, NR_OPENAT2, NR_PIDFD_OPEN, NR_PIDFD_SEND_SIGNAL = 0x10, 437, 434, 424
MAX_ARGS, MAX_ARG_BYTES, PATH_MAX = 4096, 1 << 20, 4096
MAX_RECORDED = 200
LANDING_S = 0.5  # how long an allowed exec is watched for landing on the checked file

_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("alignlab_exec_rules", default=None)
_COPIES: dict[str, DeniedCopies] = {}


@dataclass(frozen=True)
class ExecPolicy:
    """What the supervisor enforces: the policy's exec check, its version, and the workspace-exec rule."""

    check: object
    version: str
    workspace_exec: str = "allow"


@contextlib.contextmanager
def enforcing(policy, workspace_exec: str = "allow"):
    """Sandboxed runs started inside this block check every exec against `policy` (else: recorded, allowed)."""
    token = _ACTIVE.set(ExecPolicy(policy_check(policy), policy.version, workspace_exec))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def current() -> ExecPolicy | None:
    return _ACTIVE.get()


def rules_for(ep: ExecPolicy | None, workspace: str) -> ExecRules | None:
    if ep is None:
        return None
    if ep.version not in _COPIES:
        _COPIES[ep.version] = DeniedCopies.scan(ep.check)
    return ExecRules(ep.check, _COPIES[ep.version], workspace, ep.workspace_exec)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    how = struct.pack("=QQQ", flags, 0, resolve)
    fd = _libc.syscall(NR_OPENAT2, ctypes.c_int(dirfd), os.fsencode(path), how, ctypes.c_size_t(len(how)))
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    return int(fd)


class _TooLarge(Exception):
    pass


def _read_cstr(mem: int, addr: int, limit: int) -> bytes:
    out = bytearray()
    while len(out) < limit:
        chunk = os.pread(mem, min(4096 - addr % 4096, limit - len(out) + 1), addr)
        if not chunk:
            raise OSError(errno.EFAULT, "unreadable string")
        end = chunk.find(b"\0")
        if end >= 0:
            return bytes(out + chunk[:end])
        out += chunk
        addr += len(chunk)
    raise _TooLarge(f"a string longer than {limit} bytes")


def read_argv(mem: int, addr: int) -> list[str]:
    """The NULL-terminated array of strings at `addr` in the target's memory (bounded)."""
    argv, total = [], 0
    while True:
        if len(argv) >= MAX_ARGS:
            raise _TooLarge(f"more than {MAX_ARGS} arguments")
        raw = os.pread(mem, 8, addr + 8 * len(argv))
        if len(raw) != 8:
            raise OSError(errno.EFAULT, "unreadable argv")
        ptr = struct.unpack("=Q", raw)[0]
        if ptr == 0:
            return argv
        s = _read_cstr(mem, ptr, MAX_ARG_BYTES - total)
        total += len(s) + 1
        argv.append(os.fsdecode(s))


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Supervisor:
    """One run's supervisor thread: takes the listener from `sock`, answers until no process is left."""

    def __init__(self, sock: socket.socket, rules: ExecRules | None, arch: str | None = None):
        nr = seccomp_bpf.ARCHES[arch or seccomp_bpf.native_arch()]["nr"]
        self.nr_execveat = nr["execveat"]
        self.sock, self.rules = sock, rules
        self.record: dict = {"supervisor": "seccomp user notification", "enforcing": rules is not None,
                             "allowed": 0, "denied": 0, "killed": 0, "decisions": []}
        self.landlock: dict = {"applied": False, "reason": "the sandbox's inner stage reported nothing"}
        self._stop_r, self._stop_w = os.pipe()
        self._watch: list[dict] = []
        self._thread = threading.Thread(target=self._run, name="alignlab-exec-supervisor", daemon=True)

    def start(self) -> "Supervisor":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to finish (after the run) and wait for it; idempotent."""
        if self._stop_w >= 0:
            os.write(self._stop_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout)
        for fd in (self._stop_w, self._stop_r):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._stop_w = self._stop_r = -1

    # ---------------------------------------------------------------- thread
    def _run(self) -> None:
        listener = -1
        try:
            listener = self._receive()
            if listener >= 0:
                self._serve(listener)
        except Exception as exc:  # noqa: BLE001 - reported in the run's record; the sandbox fails closed
            self.record["error"] = f"supervisor stopped: {type(exc).__name__}: {exc}"
        finally:
            if listener >= 0:
                os.close(listener)
            self.sock.close()

    def _receive(self) -> int:
        while True:
            ready, _, _ = select.select([self.sock, self._stop_r], [], [])
            if self._stop_r in ready and self.sock not in ready:
                self.record["error"] = "the sandbox ended before its inner stage handed over the exec listener"
                return -1
            msg, fds, _, _ = socket.recv_fds(self.sock, 65536, 1)
            report = json.loads(msg) if msg else {}
            if "error" in report or not fds:
                self.record["error"] = report.get("error", "the sandbox's inner stage closed without a listener")
                return -1
            if "landlock" in report:
                self.landlock.clear()
                self.landlock.update(report["landlock"])
            return fds[0]

    def _serve(self, listener: int) -> None:
        poller = select.poll()
        poller.register(listener, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while True:
            events = dict(poller.poll(1 if self._watch else None))
            self._check_landings()  # first: a process blocked in its next exec shows the file it runs now
            if events.get(listener, 0) & select.POLLIN:
                self._handle(listener)
            if events.get(listener, 0) & (select.POLLHUP | select.POLLERR) and not events.get(listener, 0) & \
                    select.POLLIN:
                return  # no process uses the filter any more
            if self._stop_r in events:
                return

    def _handle(self, listener: int) -> None:
        buf = bytearray(_NOTIF.size)
        try:
            fcntl.ioctl(listener, NOTIF_RECV, buf, True)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EINTR):
                return  # the target died or was interrupted before we read it
            raise
        nid, pid, _, nr, _, _, *args = _NOTIF.unpack(buf)
        at = nr == self.nr_execveat
        target, argv, reason, opened, old_exe, files = Target(""), [], None, [], None, []
        try:
            with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
                path = os.fsdecode(_read_cstr(mem.fileno(), args[1] if at else args[0], PATH_MAX))
                argv = read_argv(mem.fileno(), args[2] if at else args[1])
            dirfd = ctypes.c_int32(args[0] & 0xFFFFFFFF).value if at else AT_FDCWD
            flags = args[4] if at else 0
            target = self._open(pid, path, dirfd, flags, opened)
            old_exe = _identity(f"/proc/{pid}/exe")
        except _TooLarge as exc:
            reason = f"exec arguments too large to check: {exc}"
        except OSError as exc:
            reason = f"exec arguments unreadable ({exc.strerror}); refused"
        try:
            fcntl.ioctl(listener, NOTIF_ID_VALID, struct.pack("=Q", nid))
        except OSError:
            self._close(opened)
            return  # the notification is gone (the target died): what was read may belong to another process
        if reason is None and self.rules is not None:
            try:
                reason, files = self.rules.decide(argv, target, lambda p: self._open(pid, p, AT_FDCWD, 0, opened))
            except Exception as exc:  # noqa: BLE001 - a failing check denies
                reason = f"exec check failed ({type(exc).__name__}: {exc}); refused"
        self._close(opened)
        allowed = reason is None
        resp = _RESP.pack(nid, 0, 0 if allowed else -errno.EPERM, FLAG_CONTINUE if allowed else 0)
        try:
            fcntl.ioctl(listener, NOTIF_SEND, bytearray(resp), True)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            return
        self._note(pid, "execveat" if at else "execve", argv, target, reason)
        if allowed and self.rules is not None and target.key is not None and old_exe is not None:
            self._expect(pid, argv, target, [f.key for f in files if f.key is not None], old_exe)

    def _open(self, pid: int, path: str, dirfd: int, flags: int, opened: list[int]) -> Target:
        """The file `path` names for process `pid`, resolved in its root (absolute symlinks included)."""
        t = Target(path)
        if at_fd := (flags & AT_EMPTY_PATH and path == ""):
            host = f"/proc/{pid}/fd/{dirfd}"
        elif path.startswith(("/proc/self/", "/proc/thread-self/")):
            host = f"/proc/{pid}/" + path.split("/", 3)[3]
        else:
            host = None
        try:
            if host is not None:
                fd = os.open(host, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
            else:
                if not path.startswith("/"):
                    base = os.readlink(f"/proc/{pid}/cwd" if dirfd == AT_FDCWD else f"/proc/{pid}/fd/{dirfd}")
                    path = os.path.join(base, path)
                if path.startswith("/proc/"):
                    raise OSError(errno.EACCES, "exec through another process's /proc entry is not checked")
                root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    fd = _openat2(root, path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY,
                                  RESOLVE_IN_ROOT)
                finally:
                    os.close(root)
        except OSError as exc:
            if exc.errno == errno.EACCES and not at_fd and path.startswith("/proc/"):
                raise
            return t  # nothing there (the exec will fail with ENOENT), or unreadable: names are still checked
        opened.append(fd)
        t.fd, t.st = fd, os.fstat(fd)
        t.name = os.readlink(f"/proc/self/fd/{fd}")
        if t.st.st_mode & 0o170000 == 0o100000:
            t.head = os.pread(fd, 256, 0)
        return t

    @staticmethod
    def _close(fds: list[int]) -> None:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        fds.clear()

    def _note(self, pid: int, call: str, argv: list[str], target: Target, reason: str | None) -> None:
        self.record["allowed" if reason is None else "denied"] += 1
        first = self.record["allowed"] + self.record["denied"] == 1
        if len(self.record["decisions"]) < MAX_RECORDED:
            # the first exec is the run's own command, already in the guard's log with the call: not repeated
            shown = "(the run's command)" if first and reason is None else [a[:200] for a in argv[:16]]
            self.record["decisions"].append({
                "pid": pid, "call": call, "argv": shown, "file": target.name or target.path,
                "action": "allow" if reason is None else "deny", **({"reason": reason} if reason else {})})

    # ---------------------------------------------------------------- after an allowed exec (TOCTOU watch)
    def _expect(self, pid: int, argv: list[str], target: Target, keys: list, old_exe: tuple[int, int]) -> None:
        pidfd = _libc.syscall(NR_PIDFD_OPEN, ctypes.c_int(pid), ctypes.c_uint(0))
        if pidfd < 0:
            return
        script = target.head.startswith(b"#!")  # the kernel puts `interpreter [arg] script` before argv[1:]
        self._watch.append({"pid": pid, "pidfd": int(pidfd), "argv": argv[1:] if script else argv, "tail": script,
                            "old": old_exe, "keys": set(keys), "deadline": time.monotonic() + LANDING_S})

    def _check_landings(self) -> None:
        still = []
        for w in self._watch:
            exe = _identity(f"/proc/{w['pid']}/exe")
            done = exe is None or time.monotonic() > w["deadline"]
            if exe is not None and exe != w["old"]:
                done = True
                cmd = _cmdline(w["pid"])
                seen = cmd if cmd is None or not w["tail"] else cmd[len(cmd) - len(w["argv"]):]
                if exe not in w["keys"] or (seen is not None and seen != w["argv"]):
                    _libc.syscall(NR_PIDFD_SEND_SIGNAL, ctypes.c_int(w["pidfd"]), ctypes.c_int(signal.SIGKILL),
                                  None, ctypes.c_uint(0))
                    self.record["killed"] += 1
                    self._note(w["pid"], "exec landed", cmd or [], Target("?"),
                               "the exec ran another file or argv than the one checked (changed after the check); "
                               "process killed")
            if done:
                os.close(w["pidfd"])
            else:
                still.append(w)
        self._watch = still


def _cmdline(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return [os.fsdecode(a) for a in raw.split(b"\0")[:-1]] if raw else None
