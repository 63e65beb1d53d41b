"""The hand-assembled seccomp filter: syscall numbers match the kernel headers, and applied to a real process it
refuses what it should (keyrings, namespaces, ptrace, mount, AF_VSOCK) and leaves ordinary work alone."""

from __future__ import annotations

import ctypes
import os
import re
import struct
from pathlib import Path

import pytest

from alignlab.controls import seccomp_bpf

HEADERS = {"x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
           "aarch64": Path("/usr/include/asm-generic/unistd.h")}


@pytest.mark.parametrize("arch", sorted(seccomp_bpf.ARCHES))
def test_syscall_numbers_match_the_kernel_headers(arch):
    header = HEADERS[arch]
    if not header.exists():
        pytest.skip(f"{header} not installed (linux-libc-dev)")
    defined = {m.group(1): int(m.group(2)) for m in
               re.finditer(r"^#define __NR_(\w+)\s+(\d+)\s*$", header.read_text(), re.M)}
    table = seccomp_bpf.ARCHES[arch]["nr"]
    checked = [name for name in table if name in defined]
    assert len(checked) >= len(table) - 3, sorted(set(table) - set(defined))  # the newest calls may postdate it
    for name in checked:
        assert table[name] == defined[name], (arch, name)


def test_program_shape():
    for arch in seccomp_bpf.ARCHES:
        prog = seccomp_bpf.build(arch)
        assert len(prog) % 8 == 0 and 20 < len(prog) // 8 < 255
        code, _, jf, k = struct.unpack("=HBBI", prog[8:16])  # arch check first, mismatch jumps to the kill
        assert k == seccomp_bpf.ARCHES[arch]["audit_arch"]
        assert struct.unpack("=HBBI", prog[-8:])[3] == seccomp_bpf.SECCOMP_RET_KILL_PROCESS
    with pytest.raises(seccomp_bpf.Unsupported):
        seccomp_bpf.build("sparc")


PROBE = r"""
import ctypes, os, socket, subprocess, threading, sys
libc = ctypes.CDLL(None, use_errno=True)
NR = {nr!r}
out = []
def sc(name, *args):
    r = libc.syscall(NR[name], *args)
    return r, ctypes.get_errno()
out.append(("keyctl", sc("keyctl", 0, -4, 0)))                                  # KEYCTL_GET_KEYRING_ID, user keyring
out.append(("add_key", sc("add_key", b"user", b"alignlab", b"x", 1, -3)))
out.append(("request_key", sc("request_key", b"user", b"alignlab", None, 0)))
out.append(("unshare", sc("unshare", 0x10000000)))
out.append(("setns", sc("setns", 0, 0)))
out.append(("ptrace", sc("ptrace", 16, os.getppid(), 0, 0)))                    # PTRACE_ATTACH
out.append(("mount", sc("mount", b"none", b"/tmp", b"tmpfs", 0, None)))
out.append(("bpf", sc("bpf", 0, None, 0)))
out.append(("perf_event_open", sc("perf_event_open", None, 0, -1, -1, 0)))
out.append(("clone_newuser", sc("clone", 0x10000000 | 17, 0, 0, 0, 0)))
try:
    socket.socket(40, socket.SOCK_STREAM); out.append(("vsock", (0, 0)))
except OSError as e:
    out.append(("vsock", (-1, e.errno)))
ok = []
socket.socket(socket.AF_UNIX).close(); socket.socket().close(); ok.append("sockets")
pid = os.fork()
if pid == 0:
    os._exit(7)
ok.append("fork" if os.WEXITSTATUS(os.waitpid(pid, 0)[1]) == 7 else "fork-broken")
t = threading.Thread(target=lambda: None); t.start(); t.join(); ok.append("thread")
ok.append("subprocess" if subprocess.run([sys.executable, "-c", "pass"]).returncode == 0 else "subprocess-broken")
print(repr((out, ok)))
"""


def test_filter_applied_to_a_process_blocks_the_escape_syscalls(tmp_path):
    arch = seccomp_bpf.native_arch()
    if arch not in seccomp_bpf.ARCHES:
        pytest.skip(f"no table for {arch}")
    import subprocess
    import sys
    code = PROBE.format(nr=seccomp_bpf.ARCHES[arch]["nr"])
    wrapper = ("from alignlab.controls import seccomp_bpf\nseccomp_bpf.install(seccomp_bpf.build())\n"
               f"exec(compile({code!r}, 'probe', 'exec'))\n")
    res = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out, ok = eval(res.stdout.strip())  # noqa: S307 - our own repr
    results = dict(out)
    for name, (ret, err) in results.items():
        assert ret == -1, (name, ret)
        assert err == (97 if name == "vsock" else 1), (name, os.strerror(err))  # EAFNOSUPPORT / EPERM
    assert ok == ["sockets", "fork", "thread", "subprocess"]


def test_install_needs_nothing_but_ctypes():
    assert ctypes.sizeof(seccomp_bpf._SockFprog) in (8, 16)


def simulate(prog: bytes, nr: int, arch: int, args=(0,) * 6) -> int:
    """Run a classic-BPF filter on one seccomp_data (the four opcodes seccomp_bpf emits): the action returned."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, *(tuple(args) + (0,) * 6)[:6])
    ins = [struct.unpack("=HBBI", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    pc = acc = 0
    while True:
        code, jt, jf, k = ins[pc]
        if code == seccomp_bpf.BPF_RET_K:
            return k
        if code == seccomp_bpf.BPF_LD_W_ABS:
            acc, pc = struct.unpack_from("=I", data, k)[0], pc + 1
            continue
        taken = {seccomp_bpf.BPF_JEQ_K: acc == k, seccomp_bpf.BPF_JGE_K: acc >= k,
                 seccomp_bpf.BPF_JSET_K: bool(acc & k)}[code]
        pc += 1 + (jt if taken else jf)


@pytest.mark.parametrize("arch", sorted(seccomp_bpf.ARCHES))
def test_argument_rules_and_exec_notify_filter_decide_as_documented(arch):
    t = seccomp_bpf.ARCHES[arch]
    nr, aa = t["nr"], t["audit_arch"]
    errno_ = seccomp_bpf.SECCOMP_RET_ERRNO
    prog = seccomp_bpf.build(arch)
    assert simulate(prog, nr["clone"], aa, (0x10000000 | 17,)) == errno_ | 1
    assert simulate(prog, nr["clone"], aa, (17,)) == seccomp_bpf.SECCOMP_RET_ALLOW
    assert simulate(prog, nr["socket"], aa, (40,)) == errno_ | 97  # AF_VSOCK
    assert simulate(prog, nr["socket"], aa, (10,)) == seccomp_bpf.SECCOMP_RET_ALLOW
    assert simulate(prog, nr["ioctl"], aa, (1, 0x5412)) == errno_ | 1  # TIOCSTI
    assert simulate(prog, nr["ioctl"], aa, (1, 0x5401)) == seccomp_bpf.SECCOMP_RET_ALLOW
    assert simulate(prog, nr["clone3"], aa) == errno_ | 38
    assert simulate(prog, nr["keyctl"], aa) == errno_ | 1
    assert simulate(prog, nr["keyctl"], aa ^ 1) == seccomp_bpf.SECCOMP_RET_KILL_PROCESS
    notify = seccomp_bpf.build_exec_notify(arch)
    for name in ("execve", "execveat"):
        assert simulate(notify, nr[name], aa) == seccomp_bpf.SECCOMP_RET_USER_NOTIF
    assert simulate(notify, nr["clone"], aa) == seccomp_bpf.SECCOMP_RET_ALLOW
    assert simulate(notify, nr["execve"], aa ^ 1) == seccomp_bpf.SECCOMP_RET_KILL_PROCESS
    if t["x32"]:
        assert simulate(notify, 0x40000000 | 520, aa) == errno_ | 1  # x32 execve
