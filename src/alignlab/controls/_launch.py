"""LEGACY sandbox launcher, used only when a policy says `[sandbox] engine = "legacy"` (the default engine is
bubblewrap: process.py, bwrap.py). Known gaps of this engine, found by an attacker's review as root: the host's
/dev, /proc/sys and /sys stay writable inside; every folder not hidden stays readable (/etc/shadow included);
filesystem unix sockets reach host services; System V IPC and the kernel keyrings are shared with the host; a
hard link already in the workspace writes to the file outside; limits are per process only.

Standard library only, run as `python -I -S _launch.py CONFIG -- ARGV...`.

Sets up Linux namespaces with unshare(2) (network; mount; PID), the filesystem view
(private mounts; tmpfs over /tmp and hidden folders; the workspace re-bound read-write;
protected files bound read-only; everything else remounted read-only), resource limits
(setrlimit), drops every capability (bounding set, securebits, capset, no_new_privs: a root
caller's command can then neither undo the mounts nor raise its limits), then execs the
command as PID 1 of the new PID namespace. The design follows
bubblewrap (github.com/containers/bubblewrap); it was written when bubblewrap was not
installed, and Python 3.11 has no os.unshare. What was achieved is
written as JSON to the status descriptor before exec, so the caller reports it honestly.
"""

import ctypes
import json
import os
import resource
import signal
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 32, 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 1 << 18, 1 << 21, 1 << 24
OPT_FLAGS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
             "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 28, 38, 47
SECURE_NOROOT_ALL = 0x0F  # SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP and their LOCKED bits

libc = ctypes.CDLL(None, use_errno=True)


def _err() -> str:
    return os.strerror(ctypes.get_errno())


def mount(src, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    if libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target}: {_err()}")


NO_NAMESPACES = False  # set from the config: tests simulate a machine where unshare(2) is refused


def unshare(flags):
    if NO_NAMESPACES:
        ctypes.set_errno(1)  # EPERM
        return False
    return libc.unshare(ctypes.c_int(flags)) == 0


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_privileges():
    """Give up every capability for good: a root command could otherwise unmount the sandbox's mounts,
    raise its resource limits or enter other namespaces. Then no_new_privs (no setuid regain)."""
    libc.prctl(PR_SET_SECUREBITS, SECURE_NOROOT_ALL, 0, 0, 0)  # exec as uid 0 no longer grants capabilities
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), f"capset: {_err()}")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"no_new_privs: {_err()}")
    with open("/proc/self/status") as fh:
        eff = next(line.split()[1] for line in fh if line.startswith("CapEff:"))
    if int(eff, 16) != 0:
        raise OSError(1, f"capabilities still effective: {eff}")


def mountinfo():
    out = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            f = line.split()
            sep = f.index("-")
            mp = f[4].encode().decode("unicode_escape")
            out.append((mp, f[5].split(","), f[sep + 1]))
    return out


def under(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def setup_fs(cfg, status):
    ws = cfg["workspace"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = [(ws, True)] + [(p, False) for p in cfg.get("expose", [])]
    fds = [(os.open(p, os.O_PATH | os.O_DIRECTORY), p, rw) for p, rw in keep if os.path.isdir(p)]
    covers, inner = ["/tmp"], []
    for h in sorted(cfg.get("hide", []), key=len):
        if os.path.isdir(h) and under(h, ws):
            inner.append(h)  # e.g. a state folder inside the workspace: hidden after the workspace is bound
        elif os.path.isdir(h) and not any(under(h, c) for c in covers):
            covers.append(h)  # a folder inside one already covered is hidden with it
    for c in covers:
        size = "size=256m,mode=1777" if c == "/tmp" else "size=1m,mode=755"
        mount("tmpfs", c, "tmpfs", MS_NOSUID | MS_NODEV, size)
    for fd, p, rw in fds:
        fst = os.fstat(fd)
        try:
            st = os.stat(p)
            visible = (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)
        except OSError:
            visible = False
        if not visible:
            os.makedirs(p, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", p, None, MS_BIND | MS_REC)
        os.close(fd)
    for h in inner:
        mount("tmpfs", h, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=700")
    for p in cfg.get("readonly", []):  # protected files inside the workspace
        mount(p, p, None, MS_BIND)
        mount(None, p, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    # Everything else read-only (each mount keeps its locked flags), except /tmp and the workspace.
    for mp, opts, fstype in mountinfo():
        if under(mp, ws) or mp == "/tmp" or fstype in ("proc", "sysfs", "devtmpfs", "devpts", "mqueue"):
            continue
        hidden_below = any(under(mp, h) and mp != h for h in cfg.get("hide", []))
        if hidden_below and not any(under(mp, e) for e in cfg.get("expose", [])):
            continue  # shadowed by the tmpfs that hides its parent
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for o in opts:
            flags |= OPT_FLAGS.get(o, 0)
        try:
            mount(None, mp, None, flags)
        except OSError:
            status.setdefault("ro_failed", []).append(mp)
    status["filesystem"] = True


def main():
    global NO_NAMESPACES
    cfg = json.loads(sys.argv[1])
    NO_NAMESPACES = bool(cfg.get("simulate_no_namespaces"))
    argv = sys.argv[sys.argv.index("--") + 1:]
    status_fd = cfg["status_fd"]
    status = {"network": False, "filesystem": False, "pid_namespace": False, "userns": False}

    def fail(msg):
        status["error"] = msg
        os.write(status_fd, json.dumps(status).encode())
        os.write(2, f"alignlab-sandbox: {msg}\n".encode())
        os._exit(125)

    want_net = cfg["network"] != "allow"
    want_fs = cfg["filesystem"] != "none"
    flags = (CLONE_NEWNET if want_net else 0) | (CLONE_NEWNS | CLONE_NEWPID if want_fs else 0)
    ok = flags == 0 or unshare(flags)
    if not ok and flags:
        uid, gid = os.getuid(), os.getgid()
        if unshare(flags | CLONE_NEWUSER):
            ok, status["userns"] = True, True
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as fh:
                    fh.write(text)
    if ok:
        status["network"] = want_net
        status["pid_namespace"] = want_fs
    elif (want_net and cfg["network"] == "isolate") or (want_fs and cfg["filesystem"] == "confine"):
        fail(f"cannot create namespaces ({_err()}); the policy requires isolation")
    elif want_net and unshare(CLONE_NEWNET):  # maybe the network alone is allowed
        status["network"] = True

    if status["pid_namespace"]:
        pid = os.fork()
        if pid:  # the launcher waits for PID 1 of the namespace and forwards its exit status
            os.close(status_fd)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, lambda s, f: os.kill(pid, signal.SIGKILL))
            _, code = os.waitpid(pid, 0)
            os._exit(os.waitstatus_to_exitcode(code) if os.WIFEXITED(code) else 128 + os.WTERMSIG(code))
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        try:
            setup_fs(cfg, status)
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except OSError as exc:  # half-built mounts cannot be trusted: never run the command on them
            fail(f"filesystem confinement failed: {exc}")

    lim = cfg["limits"]
    for name, value in (("RLIMIT_AS", lim["memory_bytes"]), ("RLIMIT_CPU", lim["cpu_s"]),
                        ("RLIMIT_FSIZE", lim["file_bytes"]), ("RLIMIT_CORE", 0), ("RLIMIT_NOFILE", 256)):
        resource.setrlimit(getattr(resource, name), (value, value))
    os.chdir(cfg["workspace"])
    try:
        drop_privileges()
        status["capabilities_dropped"] = True
    except OSError as exc:
        fail(f"cannot drop privileges: {exc}")
    os.write(status_fd, json.dumps(status).encode())
    os.close(status_fd)
    try:
        os.execvpe(argv[0], argv, os.environ)
    except OSError as exc:
        os.write(2, f"alignlab-sandbox: cannot run {argv[0]!r}: {exc.strerror}\n".encode())
        os._exit(127)


if __name__ == "__main__":
    main()
