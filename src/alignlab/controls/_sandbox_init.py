"""Inner stage of the bubblewrap sandbox: Landlock, then the exec-notify seccomp filter, then the command.

Standard library only. bubblewrap starts it as `python -I -S -c BOOT LANDLOCK_SRC INIT_SRC -- ARGV` (the shim
_bwrap_exec.py inserts that prefix; the package is not visible inside the sandbox, so the two files travel as
source). Its settings come in the environment variable ALIGNLAB_SANDBOX_INIT (set with `bwrap --setenv`, removed
before the command runs): the supervisor socket's descriptor, the filter program, the Landlock paths.

In order, after bubblewrap has built the mounts (Landlock forbids mounting, so it cannot come earlier):
1. Landlock (landlock.py), where the kernel has it; the report says what was applied, or why nothing was;
2. the filter of seccomp_bpf.build_exec_notify, installed with SECCOMP_FILTER_FLAG_NEW_LISTENER (seccomp(2),
   seccomp_unotify(2)); the listener descriptor goes to the guard's supervisor over the unix socket (SCM_RIGHTS),
   with the Landlock report, and is closed here: from now on every execve/execveat of the command and of
   everything it starts waits for the supervisor's answer;
3. exec of the command (its own path search, so the supervisor sees one exec, not one per PATH entry).
Any failure before 3 writes one line to stderr and exits 125: the command never runs unsupervised.
"""

import ctypes
import json
import os
import socket
import sys

try:
    import landlock  # inside the sandbox: loaded from source by the bootstrap
except ImportError:  # imported from the package (tests, linters)
    from alignlab.controls import landlock

ENV = "ALIGNLAB_SANDBOX_INIT"
SECCOMP_SET_MODE_FILTER = 1
FLAG_NEW_LISTENER, FLAG_WAIT_KILLABLE_RECV = 1 << 3, 1 << 5
PR_SET_NO_NEW_PRIVS = 38
EINVAL = 22


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_listener(program: bytes, nr_seccomp: int) -> int:
    """Install `program` on the calling thread with a new listener; returns the listener descriptor."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    # WAIT_KILLABLE_RECV (Linux 5.19): once the supervisor has read a notification, only a fatal signal ends the
    # wait, so a signal cannot restart the exec behind the supervisor's back; older kernels: without it.
    for flags in (FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV, FLAG_NEW_LISTENER):
        fd = libc.syscall(nr_seccomp, ctypes.c_uint(SECCOMP_SET_MODE_FILTER), ctypes.c_uint(flags),
                          ctypes.byref(prog))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err != EINVAL:
            break
    raise OSError(err, "seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER)")


def find_program(name: str, path: str) -> str:
    """execvp's search: a name with a slash as is, else the first executable file on PATH."""
    if "/" in name:
        return name
    for d in path.split(os.pathsep):
        cand = os.path.join(d or ".", name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise FileNotFoundError(2, f"{name!r} not found on PATH")


def fail(msg: str, code: int = 125):
    os.write(2, f"alignlab-sandbox: {msg}\n".encode())
    os._exit(code)


def main(argv: list[str]) -> None:
    command = argv[argv.index("--") + 1:]
    raw = os.environ.pop(ENV, None)
    if raw is not None:
        cfg = json.loads(raw)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=cfg["notify_fd"])
        report: dict = {}
        ll = cfg.get("landlock")
        if ll is not None:
            try:
                report["landlock"] = landlock.restrict(**ll)
            except OSError as exc:  # the kernel has Landlock but refused a step: say so, keep the other layers
                report["landlock"] = {"applied": False, "reason": f"{exc.filename}: {exc.strerror}"}
        try:
            listener = install_listener(bytes.fromhex(cfg["filter"]), cfg["nr_seccomp"])
        except OSError as exc:
            msg = f"exec supervision unavailable: {exc.filename}: {exc.strerror}"
            sock.sendall(json.dumps({"error": msg}).encode())
            fail(msg)
        try:
            socket.send_fds(sock, [json.dumps(report).encode()], [listener])
        except OSError as exc:
            fail(f"cannot hand the exec listener to the guard's supervisor: {exc.strerror}")
        os.close(listener)
        sock.close()
    try:
        path = find_program(command[0], os.environ.get("PATH", os.defpath))
        os.execve(path, command, os.environ)
    except OSError as exc:
        fail(f"cannot run {command[0]!r}: {exc.strerror}", 126 if exc.errno == 1 else 127)


if __name__ == "__main__":
    main(sys.argv)
