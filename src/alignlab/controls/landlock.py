"""Landlock for the sandbox: the kernel's unprivileged access control (docs.kernel.org/userspace-api/landlock.html).

Standard library only, with no alignlab import: the sandbox's inner stage (_sandbox_init.py) loads this file by
its source inside bubblewrap, where the package is not visible. Written with ctypes because no maintained Python
binding is in the package registries this project installs from (the Rust and Go crates are the reference
libraries; the syscall layout below follows linux/landlock.h and the kernel's own sample, samples/landlock).

What `restrict` does, in the calling process and everything it execs (a Landlock domain cannot be lifted):
- writes (and, when `read` is given, reads) of files only beneath the given folders and files; every other
  path refuses with EACCES, whatever the mounts say;
- on ABI >= 4, TCP bind and connect refused on every port (no rule is added); UDP is not covered by Landlock;
- on ABI >= 6, abstract unix sockets and signals scoped to the domain.
Rights the running kernel does not know are left out (best effort by ABI, as the kernel documentation advises),
and the report says which ABI and which rights were applied.
"""

from __future__ import annotations

import ctypes
import os
import stat

# linux/landlock.h
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
FS = {"execute": 1 << 0, "write_file": 1 << 1, "read_file": 1 << 2, "read_dir": 1 << 3, "remove_dir": 1 << 4,
      "remove_file": 1 << 5, "make_char": 1 << 6, "make_dir": 1 << 7, "make_reg": 1 << 8, "make_sock": 1 << 9,
      "make_fifo": 1 << 10, "make_block": 1 << 11, "make_sym": 1 << 12, "refer": 1 << 13, "truncate": 1 << 14,
      "ioctl_dev": 1 << 15}
FS_ABI = {"refer": 2, "truncate": 3, "ioctl_dev": 5}  # the first ABI that knows the right (others: ABI 1)
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
FILE_RIGHTS = FS["execute"] | FS["write_file"] | FS["read_file"] | FS["truncate"] | FS["ioctl_dev"]
READ = FS["read_file"] | FS["read_dir"]
WRITE = sum(v for k, v in FS.items() if k not in ("execute", "read_file", "read_dir"))
# landlock_create_ruleset, landlock_add_rule, landlock_restrict_self: one number on every architecture (asm-generic)
NR_CREATE, NR_ADD_RULE, NR_RESTRICT = 444, 445, 446
PR_SET_NO_NEW_PRIVS = 38


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in linux/landlock.h
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi() -> tuple[int, str]:
    """(the kernel's Landlock ABI version, why 0): 0 where the kernel lacks Landlock or has it disabled."""
    libc = _libc()
    v = libc.syscall(NR_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    if v >= 0:
        return int(v), ""
    err = ctypes.get_errno()
    why = {38: "the kernel has no Landlock (ENOSYS: built without CONFIG_SECURITY_LANDLOCK)",
           95: "Landlock is disabled at boot (EOPNOTSUPP: not in the lsm= list)"}.get(err, os.strerror(err))
    return 0, why


def handled_fs(version: int, reads: bool) -> int:
    """The filesystem rights this ABI knows, without the read rights unless reads are restricted too."""
    rights = 0
    for name, bit in FS.items():
        if name != "execute" and FS_ABI.get(name, 1) <= version and (reads or bit not in (FS["read_file"],
                                                                                          FS["read_dir"])):
            rights |= bit
    return rights


def restrict(write: list[str], read: list[str] | None = None, deny_tcp: bool = True, devices: list[str] = (),
             filesystem: bool = True, listable: list[str] = ()) -> dict:
    """Restrict the calling process (and what it execs) for good; returns a report (JSON-able).

    write: folders (or files) beneath which writing is allowed (reads there too); read: folders or files where
    reading is allowed (None: reads not restricted); devices: device files allowed read and write (/dev/null);
    deny_tcp: refuse TCP bind/connect (ABI >= 4); filesystem: False leaves files alone (policy filesystem = none);
    listable: folders whose subfolders may be listed (not read) where reads are restricted.
    Raises OSError where the kernel refuses a step after it said it has Landlock.
    """
    version, why = abi()
    if version == 0:
        return {"applied": False, "abi": 0, "reason": why}
    libc = _libc()
    fs = handled_fs(version, read is not None) if filesystem else 0
    attr = _RulesetAttr(fs, NET_BIND_TCP | NET_CONNECT_TCP if deny_tcp and version >= 4 else 0,
                        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if version >= 6 else 0)
    size = 8 if version < 4 else 16 if version < 6 else 24
    if not (attr.handled_access_fs or attr.handled_access_net or attr.scoped):
        return {"applied": False, "abi": version, "reason": "nothing to restrict"}
    rfd = libc.syscall(NR_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if rfd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    missing: list[str] = []
    try:
        if fs:
            rules = [(p, fs) for p in write] + [(p, fs & FILE_RIGHTS) for p in devices]
            rules += [(p, fs & READ) for p in read or ()] + [(p, fs & FS["read_dir"]) for p in listable]
            for path, access in rules:
                _add_path(libc, rfd, path, access, missing)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
        if libc.syscall(NR_RESTRICT, ctypes.c_int(rfd), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(rfd)
    return {"applied": True, "abi": version,
            "filesystem": ("not restricted (policy filesystem = none)" if not fs else
                           f"writes only beneath {list(write)} and {len(devices)} device files"
                           + (f"; reads only beneath {len(read)} bound paths" if read is not None else
                              "; reads not restricted by Landlock (bubblewrap's allow-list)")),
            "network": ("TCP bind and connect refused" if attr.handled_access_net else
                        "not restricted by Landlock" + (" (ABI < 4)" if deny_tcp else "")),
            "scoped": "abstract unix sockets, signals" if attr.scoped else "none (ABI < 6)",
            "missing_paths": missing[:20]}


def _add_path(libc, rfd: int, path: str, access: int, missing: list[str]) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        missing.append(path)
        return
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= FILE_RIGHTS
        rule = _PathBeneath(access, fd)
        if access and libc.syscall(NR_ADD_RULE, ctypes.c_int(rfd), ctypes.c_int(RULE_PATH_BENEATH),
                                   ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
    finally:
        os.close(fd)
