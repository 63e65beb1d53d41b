"""The bubblewrap sandbox engine: the `bwrap` argument list for one run (the default engine).

bubblewrap (github.com/containers/bubblewrap, the sandbox Flatpak runs its apps in) builds
the sandbox from nothing: an empty tmpfs root into which only what is named is mounted. So
the view is an allow-list, not the host minus a deny-list:

- every namespace new (`--unshare-all`, with user and cgroup made mandatory rather than
  "try"): user, IPC (System V IPC and POSIX message queues are the sandbox's own), PID, network
  (loopback only; abstract unix sockets belong to the network namespace), UTS, cgroup
  (namespaces(7)); `--disable-userns` stops the command from making further user namespaces;
- `--cap-drop ALL`, `--die-with-parent`, `--new-session` (no controlling terminal to inject
  into), a seccomp filter (`--seccomp FD`, see seccomp_bpf.py);
- a fresh minimal `/dev` (null, zero, full, random, urandom, tty, pts, shm), remounted
  read-only, with a size-limited tmpfs on /dev/shm; a fresh `/proc` for the new PID namespace
  with the kernel's writable knobs read-only (/proc/sys, /proc/sysrq-trigger, /proc/bus,
  /proc/fs, /proc/irq) and the informative ones masked (/proc/kcore, /proc/keys, /proc/timer_list,
  /proc/acpi, /proc/scsi ...), as container runtimes do; no /sys at all;
- read-only: /usr and the /bin, /sbin, /lib* links or folders, a few /etc files (the dynamic
  loader's cache and config, alternatives, localtime, nsswitch.conf), generated /etc/passwd,
  /etc/group, /etc/hosts for the sandbox, and the Python installation that runs the command;
- read-write: the workspace, and a size-limited private tmpfs on /tmp; then the protected files
  bound read-only over it, the guard's state folder hidden, and the root remounted read-only.

Why the read-only /proc/sys matters when the caller is root: the sandbox's uid 0 maps to the
host's uid 0, and sysctl files are checked by owner and mode (0644, owner root), so a
capability-less uid 0 could still write kernel.core_pattern through a writable /proc/sys.

Before the run, the workspace is scanned: a regular file with more links than the workspace
holds names for is a hard link to a file outside (writing it would write the outside file),
and a unix socket may lead to a host service; each is masked by an empty read-only file bound
over it, inside the sandbox only (the host tree is not changed).
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field

from alignlab.controls import exec_supervisor, seccomp_bpf

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime",
             "/etc/nsswitch.conf")
PROC_READ_ONLY = ("sys", "sysrq-trigger", "bus", "fs", "irq")
PROC_MASK_DIRS = ("acpi", "scsi", "asound")
PROC_MASK_FILES = ("kcore", "keys", "key-users", "timer_list", "sched_debug", "latency_stats", "timer_stats",
                   "kallsyms", "kmsg")
HOSTNAME = "alignlab-sandbox"
TMP_BYTES = 256 << 20
SHM_BYTES = 64 << 20
INSTALL_HINT = ("the sandbox engine 'bwrap' needs bubblewrap, which is not installed: install the `bubblewrap` "
                "package (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap; "
                "or run `make sandbox`), or choose the older engine explicitly with [sandbox] engine = \"legacy\"")


def find_bwrap() -> str | None:
    return shutil.which("bwrap", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/bin",
                                                        "/usr/local/bin"]))


MIN_VERSION = (0, 8, 0)  # --disable-userns (0.8.0), --size for --tmpfs (0.7.0)


@functools.lru_cache(maxsize=None)
def version_problem(bwrap: str) -> str | None:
    """None when `bwrap` is new enough, else why not (one line)."""
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {bwrap} --version: {exc}"
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    if m is None:
        return f"cannot read the version of {bwrap} ({out.strip()[:80]!r})"
    have = tuple(int(x) for x in m.groups())
    if have < MIN_VERSION:
        return (f"bubblewrap {'.'.join(map(str, have))} at {bwrap} is too old: the sandbox needs "
                f"{'.'.join(map(str, MIN_VERSION))} or newer (--disable-userns, --size); upgrade the `bubblewrap` "
                "package")
    return None


@functools.lru_cache(maxsize=None)
def namespaces_available(bwrap: str) -> tuple[bool, str]:
    """Can bubblewrap make the namespaces here? (False in containers that refuse user namespaces.)"""
    try:
        res = subprocess.run([bwrap, "--unshare-all", "--unshare-user", "--unshare-cgroup", "--disable-userns",
                              "--die-with-parent", "--cap-drop", "ALL", "--ro-bind", "/", "/", "--", "true"],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=20, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    if res.returncode == 0:
        return True, ""
    return False, res.stderr.decode(errors="replace").strip()[-300:]


def under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    return fd


def scan_workspace(root: str, skip: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """(hard links whose other names are outside the workspace, unix sockets), as absolute paths.

    A regular file's link count is compared with the names the walk finds for its inode; symlinks
    are not followed, folders in `skip` (hidden in the sandbox anyway) are not entered.
    """
    names: dict[tuple[int, int], list[str]] = {}
    nlink: dict[tuple[int, int], int] = {}
    sockets: list[str] = []
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if not any(under(e.path, s) for s in skip):
                        stack.append(e.path)
                elif stat.S_ISSOCK(st.st_mode):
                    sockets.append(e.path)
                elif stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    names.setdefault(key, []).append(e.path)
                    nlink[key] = st.st_nlink
    links = sorted(p for key, paths in names.items() if nlink[key] > len(paths) for p in paths)
    return links, sorted(sockets)


@dataclass
class Plan:
    """The bwrap options for one run, the descriptors they name, and what to report."""

    args: list[str] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    isolation: dict = field(default_factory=dict)
    tempdir: str | None = None
    supervisor: object | None = None  # exec_supervisor.Supervisor: answers the sandbox's execs during the run

    def close(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
        if self.tempdir:
            shutil.rmtree(self.tempdir, ignore_errors=True)
            self.tempdir = None


def _passwd(workspace: str) -> tuple[bytes, bytes]:
    uid, gid = os.getuid(), os.getgid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = "sandbox"
    users = {0: f"root:x:0:0:root:{workspace if uid == 0 else '/root'}:/usr/sbin/nologin",
             65534: "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"}
    groups = {0: "root:x:0:", 65534: "nogroup:x:65534:"}
    if uid not in users:
        users[uid] = f"{name}:x:{uid}:{gid}::{workspace}:/usr/sbin/nologin"
    if gid not in groups:
        groups[gid] = f"{name}:x:{gid}:"
    return ("\n".join(users.values()) + "\n").encode(), ("\n".join(groups.values()) + "\n").encode()


def build(*, workspace: str, network: bool, confine: bool, expose: list[str], readonly: list[str],
          hide: list[str], seccomp: bytes | None, status_fd: int, tmp_bytes: int = TMP_BYTES,
          shm_bytes: int = SHM_BYTES) -> Plan:
    """The bwrap options (everything before `--`) for a run in `workspace`.

    network: make a network namespace (loopback only); confine: the allow-list filesystem (else the
    host's / bound read-write, the policy's explicit "none"); expose: folders bound read-only (the
    Python installation); readonly: protected paths inside the workspace; hide: folders to cover with
    an empty read-only tmpfs where they would be visible (the guard's state folder).
    """
    plan = Plan()
    a = plan.args
    a += ["--unshare-all", "--unshare-user", "--unshare-cgroup", "--disable-userns"]
    if not network:
        a.append("--share-net")
    a += ["--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", HOSTNAME,
          "--json-status-fd", str(status_fd)]
    if seccomp is not None:
        fd = _memfd("alignlab-seccomp", seccomp)
        plan.fds.append(fd)
        a += ["--seccomp", str(fd)]
    plan.tempdir = tempfile.mkdtemp(prefix="alignlab-bwrap-")
    empty = os.path.join(plan.tempdir, "empty")
    with open(empty, "wb"):
        pass
    os.chmod(empty, 0o444)

    if not confine:
        a += ["--bind", "/", "/", "--dev-bind", "/dev", "/dev"]
    else:
        for d in SYSTEM_DIRS:
            if os.path.islink(d):
                a += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                a += ["--ro-bind", d, d]
        for f in ETC_FILES:
            if os.path.exists(f):
                a += ["--ro-bind", f, f]
        passwd, group = _passwd(workspace)
        for name, data in (("passwd", passwd), ("group", group),
                           ("hosts", b"127.0.0.1 localhost\n::1 localhost\n"), ("hostname", f"{HOSTNAME}\n".encode())):
            fd = _memfd(f"alignlab-{name}", data)
            plan.fds.append(fd)
            a += ["--ro-bind-data", str(fd), f"/etc/{name}"]
        a += ["--dev", "/dev", "--perms", "1777", "--size", str(shm_bytes), "--tmpfs", "/dev/shm",
              "--remount-ro", "/dev"]
    a += ["--proc", "/proc"]
    for name in PROC_READ_ONLY:
        if os.path.exists(f"/proc/{name}"):
            a += ["--ro-bind", f"/proc/{name}", f"/proc/{name}"]
    for name in PROC_MASK_DIRS:
        if os.path.isdir(f"/proc/{name}"):
            a += ["--perms", "0555", "--size", "4096", "--tmpfs", f"/proc/{name}", "--remount-ro", f"/proc/{name}"]
    for name in PROC_MASK_FILES:
        if os.path.isfile(f"/proc/{name}"):
            a += ["--ro-bind", empty, f"/proc/{name}"]

    masked_links: list[str] = []
    masked_sockets: list[str] = []
    if confine:
        a += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
        bound = [d for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)]
        ops: list[tuple[str, int, list[str]]] = []  # (path, order at equal path, options)
        for e in expose:
            if os.path.isdir(e) and not any(under(e, d) for d in bound):
                ops.append((e, 0, ["--ro-bind", e, e]))
                bound.append(e)
        ops.append((workspace, 1, ["--bind", workspace, workspace]))
        bound.append(workspace)
        hidden = []
        for h in hide:
            h = os.path.normpath(h)
            if h != "/" and os.path.isdir(h) and any(under(h, b) for b in bound):
                hidden.append(h)
                ops.append((h, 2, ["--perms", "0700", "--size", "4096", "--tmpfs", h, "--remount-ro", h]))
        for p in readonly:
            if under(p, workspace) and os.path.lexists(p) and not os.path.islink(p):
                ops.append((p, 3, ["--ro-bind", p, p]))
        masked_links, masked_sockets = scan_workspace(workspace, tuple(hidden))
        for p in masked_links + masked_sockets:
            if not any(under(p, h) for h in hidden):
                ops.append((p, 4, ["--ro-bind", empty, p]))
        # parents before children (a later mount covers an earlier one), as bubblewrap's manual advises
        for _, _, opts in sorted(ops, key=lambda o: (o[0].rstrip("/").count("/"), o[1], o[0])):
            a += opts
        a += ["--remount-ro", "/"]
    a += ["--chdir", workspace]
    exec_info, landlock_info = _supervise(plan, workspace=workspace, network=network, confine=confine,
                                          expose=expose, seccomp=seccomp)

    plan.isolation = {
        "engine": "bwrap", "network": network, "filesystem": confine, "pid_namespace": True, "userns": True,
        "ipc_namespace": True, "uts_namespace": True, "cgroup_namespace": True, "capabilities_dropped": True,
        "seccomp": seccomp is not None, "dev": "minimal, read-only" if confine else "host",
        "proc": "private; /proc/sys read-only", "sys": "absent" if confine else "host",
        "masked": {"hard_links_to_outside": [os.path.relpath(p, workspace) for p in masked_links][:50],
                   "unix_sockets": [os.path.relpath(p, workspace) for p in masked_sockets][:50],
                   "count": len(masked_links) + len(masked_sockets)},
        "exec": exec_info, "landlock": landlock_info,
    }
    if plan.supervisor is not None:
        plan.supervisor.start()
    return plan


DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx")
DEVICE_DIRS = ("/dev/pts", "/dev/shm")


def _supervise(plan: Plan, *, workspace: str, network: bool, confine: bool, expose: list[str],
               seccomp: bytes | None) -> tuple[dict, dict]:
    """The sandbox's inner stage (_sandbox_init.py): its settings (`--setenv`), the exec supervisor's socket.

    Every exec inside is checked by exec_supervisor.py (against the policy in force, exec_supervisor.enforcing;
    recorded and allowed where none is); Landlock confines writes to the workspace and /tmp, reads to what is
    bound here (confined filesystem), and refuses TCP (isolated network). Returns the "exec" and "landlock"
    records, filled in by the supervisor during the run.
    """
    if seccomp is None:  # no seccomp table for this machine: no exec filter either
        return ({"supervisor": "none", "reason": "no seccomp filter for this architecture"},
                {"applied": False, "reason": "no sandbox inner stage without a seccomp filter"})
    arch = seccomp_bpf.native_arch()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    theirs_fd = theirs.detach()
    os.set_inheritable(theirs_fd, True)
    plan.fds.append(theirs_fd)
    sup = exec_supervisor.Supervisor(ours, exec_supervisor.rules_for(exec_supervisor.current(), workspace), arch)
    plan.supervisor = sup
    reads = None
    if confine:
        reads = [*SYSTEM_DIRS, *ETC_FILES, *(f"/etc/{n}" for n in ("passwd", "group", "hosts", "hostname")),
                 *expose, "/dev", "/proc"]
    landlock = {"write": [workspace, "/tmp", *DEVICE_DIRS] if confine else [], "read": reads,
                "devices": list(DEVICES), "deny_tcp": network, "filesystem": confine,
                "listable": ["/"] if confine else []}
    cfg = {"notify_fd": theirs_fd, "filter": seccomp_bpf.build_exec_notify(arch).hex(),
           "nr_seccomp": seccomp_bpf.ARCHES[arch]["nr"]["seccomp"], "landlock": landlock}
    plan.args += ["--setenv", "ALIGNLAB_SANDBOX_INIT", json.dumps(cfg)]
    return sup.record, sup.landlock
