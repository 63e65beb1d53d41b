"""Escapes found by an attacker's review of the older sandbox, each tried for real against the bubblewrap engine.

Run as root (like CI): the sandbox's uid 0 is the host's uid 0 with no capabilities, which is
exactly the case where a writable /proc/sys, /dev or /sys, a readable /etc/shadow, a host unix
socket, shared System V IPC, the shared root keyring, or an existing hard link would let a
command out. Every script exits 0 only if the escape failed; nothing here writes anything to a
kernel interface even when the sandbox is broken (write attempts re-write the value just read, or
only open for writing).
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import sys
import threading
from pathlib import Path

import pytest

from alignlab.controls import bwrap as bwrap_mod
from alignlab.controls.policy import PolicyError, SandboxSettings, loads
from alignlab.controls.process import Runner, capabilities
from alignlab.controls.sandbox import SandboxViolation

CAPS = capabilities("bwrap")
needs_bwrap = pytest.mark.skipif(not CAPS["filesystem"], reason="bubblewrap missing or namespaces refused here")


def run(ws, code, *args, **settings):
    settings = {"network": "isolate", "filesystem": "confine", "timeout_s": 60, **settings}
    return Runner(ws, SandboxSettings(**settings)).run([sys.executable, "-c", code, *args])


@pytest.fixture
def ws(tmp_path):
    d = tmp_path / "ws"
    d.mkdir()
    return d


def assert_escape_failed(res):
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert "ESCAPED" not in res.stdout, res.stdout


# ------------------------------------------------------------------ /dev, /proc/sys, /sys
@needs_bwrap
def test_nothing_can_be_left_in_dev_and_no_kernel_log_can_be_forged(ws):
    name = f"alignlab-pwned-{os.urandom(4).hex()}"
    code = ("import os, sys\n"
            "try:\n open('/dev/' + sys.argv[1], 'w').write('x'); print('ESCAPED dev')\nexcept OSError: pass\n"
            "try:\n fd = os.open('/dev/kmsg', os.O_WRONLY); os.close(fd); print('ESCAPED kmsg')\nexcept OSError: pass\n"
            "assert sorted(os.listdir('/dev')) == sorted(set(os.listdir('/dev'))), 'sanity'\n"
            "print(sorted(os.listdir('/dev')))\n")
    res = run(ws, code, name)
    assert_escape_failed(res)
    assert not Path("/dev", name).exists()
    assert "kmsg" not in res.stdout and "mem" not in res.stdout.replace("shm", "")  # a minimal /dev


@needs_bwrap
def test_proc_sys_is_read_only(ws):
    # re-writes the value it read: an accepted write changes nothing, and is still the escape we test for
    code = ("paths = ['/proc/sys/kernel/core_pattern', '/proc/sys/kernel/modprobe', '/proc/sys/vm/drop_caches',\n"
            "         '/proc/sys/kernel/hostname']\n"
            "import os\n"
            "for p in paths:\n"
            "    if not os.path.exists(p): continue\n"
            "    try:\n"
            "        old = open(p).read() if p != '/proc/sys/vm/drop_caches' else None\n"
            "        fd = os.open(p, os.O_WRONLY)\n"
            "    except OSError as e:\n"
            "        print('refused', p, e.errno); continue\n"
            "    try:\n"
            "        if old is not None: os.write(fd, old.encode())\n"
            "    finally:\n"
            "        os.close(fd)\n"
            "    print('ESCAPED', p)\n"
            "for p in ['/proc/sysrq-trigger', '/proc/kcore', '/proc/kmsg']:\n"
            "    try:\n"
            "        os.close(os.open(p, os.O_WRONLY)); print('ESCAPED open', p)\n"
            "    except OSError: pass\n")
    before = Path("/proc/sys/kernel/core_pattern").read_text()
    res = run(ws, code)
    assert_escape_failed(res)
    assert "refused /proc/sys/kernel/core_pattern" in res.stdout
    assert Path("/proc/sys/kernel/core_pattern").read_text() == before


@needs_bwrap
def test_sys_is_absent(ws):
    code = ("import os\nassert not os.path.exists('/sys'), os.listdir('/sys')\n"
            "for p in ['/sys/kernel/uevent_helper', '/sys/fs/cgroup/cgroup.procs', '/sys/power/state']:\n"
            "    try:\n        os.close(os.open(p, os.O_WRONLY)); print('ESCAPED', p)\n    except OSError: pass\n")
    assert_escape_failed(run(ws, code))


# ------------------------------------------------------------------ reading the host's files
@needs_bwrap
def test_files_outside_the_allow_list_are_not_readable(ws, tmp_path):
    canaries = []
    for base in ("/var/tmp", "/opt", "/srv", "/mnt"):
        if os.path.isdir(base) and os.access(base, os.W_OK):
            p = Path(base) / f"alignlab-canary-{os.urandom(4).hex()}"
            p.write_text("CANARY-SECRET")
            canaries.append(str(p))
    try:
        code = ("import sys, os\n"
                "for p in sys.argv[1:]:\n"
                "    try:\n        data = open(p).read()\n    except OSError:\n        continue\n"
                "    print('ESCAPED', p, data[:40])\n"
                "print(sorted(os.listdir('/etc')))\n")
        res = run(ws, code, "/etc/shadow", "/etc/gshadow", "/etc/ssh/ssh_host_ed25519_key", "/root/.bash_history",
                  "/etc/sudoers", *canaries)
        assert_escape_failed(res)
        assert "CANARY-SECRET" not in res.stdout
        etc = eval(res.stdout.strip().splitlines()[-1])  # noqa: S307 - our own repr
        assert "shadow" not in etc and set(etc) <= {"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives",
                                                   "localtime", "nsswitch.conf", "passwd", "group", "hosts",
                                                   "hostname"}
    finally:
        for p in canaries:
            os.unlink(p)


@needs_bwrap
def test_passwd_inside_is_made_for_the_sandbox(ws):
    res = run(ws, "print(open('/etc/passwd').read())")
    assert res.ok and len(res.stdout.strip().splitlines()) <= 3
    host_users = {line.split(":")[0] for line in Path("/etc/passwd").read_text().splitlines() if line}
    inside = {line.split(":")[0] for line in res.stdout.strip().splitlines()}
    assert inside <= {"root", "nobody"} | host_users and len(inside) <= 3


# ------------------------------------------------------------------ host services over unix sockets
def _listener(path_or_name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path_or_name)
    s.listen(5)
    s.settimeout(0.2)
    hits = []

    def accept():
        for _ in range(40):
            try:
                c, _ = s.accept()
                hits.append(c.recv(100))
                c.close()
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    return s, t, hits


@needs_bwrap
def test_host_unix_sockets_are_unreachable(ws, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    targets = [str(outside / "svc.sock"), str(ws / "planted.sock")]
    if os.access("/var/tmp", os.W_OK):
        targets.append(f"/var/tmp/alignlab-{os.urandom(3).hex()}.sock")
    abstract = f"\0alignlab-{os.urandom(4).hex()}"
    listeners = [_listener(p) for p in targets] + [_listener(abstract)]
    try:
        code = ("import socket, sys\n"
                "for p in sys.argv[1:]:\n"
                "    s = socket.socket(socket.AF_UNIX)\n"
                "    s.settimeout(2)\n"
                "    try:\n"
                "        s.connect(p.replace('@', '\\0', 1) if p.startswith('@') else p)\n"
                "        s.sendall(b'ESCAPED'); print('ESCAPED', repr(p))\n"
                "    except OSError as e:\n"
                "        print('refused', repr(p), e.errno)\n")
        res = run(ws, code, *targets, "@" + abstract[1:])
        assert_escape_failed(res)
        assert res.isolation["masked"]["unix_sockets"] == ["planted.sock"]
    finally:
        for s, t, _ in listeners:
            s.close()
        for p in targets:
            if os.path.exists(p):
                os.unlink(p)
    assert not any(hits for _, _, hits in listeners)


# ------------------------------------------------------------------ System V IPC and keyrings
@needs_bwrap
def test_system_v_ipc_of_the_host_is_invisible(ws):
    libc = ctypes.CDLL(None, use_errno=True)
    key = int.from_bytes(os.urandom(3), "big") + 0x1000
    IPC_CREAT, IPC_RMID = 0o1000, 0
    shm = libc.shmget(key, 4096, IPC_CREAT | 0o666)
    msg = libc.msgget(key, IPC_CREAT | 0o666)
    sem = libc.semget(key, 1, IPC_CREAT | 0o666)
    assert shm >= 0 and msg >= 0 and sem >= 0
    try:
        code = ("import ctypes, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nkey = int(sys.argv[1])\n"
                "for name, r in (('shm', libc.shmget(key, 0, 0)), ('msg', libc.msgget(key, 0)),\n"
                "                ('sem', libc.semget(key, 0, 0))):\n"
                "    if r >= 0: print('ESCAPED', name, r)\n"
                "print(open('/proc/sysvipc/shm').read().count('\\n'))\n")
        res = run(ws, code, str(key))
        assert_escape_failed(res)
        assert res.stdout.strip().splitlines()[-1] == "1"  # the header line only: no segment at all
    finally:
        libc.shmctl(shm, IPC_RMID, None)
        libc.msgctl(msg, IPC_RMID, None)
        libc.semctl(sem, 0, IPC_RMID)


@needs_bwrap
def test_kernel_keyrings_are_refused(ws):
    code = ("import ctypes, platform\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "NR = {'x86_64': (250, 248, 249), 'aarch64': (219, 217, 218)}[platform.machine()]\n"
            "for name, r in (('keyctl', libc.syscall(NR[0], 0, -4, 0)),\n"
            "                ('add_key', libc.syscall(NR[1], b'user', b'alignlab', b'x', 1, -4)),\n"
            "                ('request_key', libc.syscall(NR[2], b'user', b'alignlab', None, 0))):\n"
            "    if r >= 0: print('ESCAPED', name, r)\n"
            "    elif ctypes.get_errno() != 1: print('ESCAPED? errno', name, ctypes.get_errno())\n"
            "print(open('/proc/keys').read() == '')\n")
    res = run(ws, code)
    assert_escape_failed(res)
    assert res.stdout.strip().endswith("True")  # /proc/keys masked


@needs_bwrap
def test_namespaces_ptrace_and_mount_are_refused_inside(ws):
    code = ("import ctypes, os, socket\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "if libc.unshare(0x10000000) == 0: print('ESCAPED userns')\n"
            "if libc.unshare(0x00020000) == 0: print('ESCAPED mountns')\n"
            "if libc.mount(b'none', b'/tmp', b'tmpfs', 0, None) == 0: print('ESCAPED mount')\n"
            "if libc.ptrace(16, 1, None, None) == 0: print('ESCAPED ptrace')\n"
            "try:\n socket.socket(40, socket.SOCK_STREAM); print('ESCAPED vsock')\nexcept OSError: pass\n"
            "caps = open('/proc/self/status').read()\n"
            "for k in ('CapEff', 'CapPrm', 'CapBnd'):\n"
            "    if int(caps.split(k + ':')[1].split()[0], 16): print('ESCAPED caps', k)\n")
    assert_escape_failed(run(ws, code))


# ------------------------------------------------------------------ hard links
@needs_bwrap
def test_hard_link_to_an_outside_file_cannot_write_it(ws, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "target.txt"
    target.write_text("original")
    os.link(target, ws / "alias.txt")
    (ws / "a.txt").write_text("inner")
    os.link(ws / "a.txt", ws / "b.txt")  # both names inside: an ordinary hard link, left alone
    code = ("import os\n"
            "try:\n open('alias.txt', 'w').write('pwned'); print('ESCAPED write')\nexcept OSError: pass\n"
            "try:\n os.chmod('alias.txt', 0o666); print('ESCAPED chmod')\nexcept OSError: pass\n"
            "try:\n os.unlink('alias.txt'); print('ESCAPED unlink')\nexcept OSError: pass\n"
            "if open('alias.txt').read(): print('ESCAPED read')\n"
            "open('b.txt', 'a').write('+')\n")
    res = run(ws, code)
    assert_escape_failed(res)
    assert target.read_text() == "original" and (ws / "alias.txt").exists()
    assert res.isolation["masked"]["hard_links_to_outside"] == ["alias.txt"]
    assert (ws / "a.txt").read_text() == "inner+"


# ------------------------------------------------------------------ sandbox-wide limits
@needs_bwrap
def test_fork_bomb_is_bounded_by_the_pids_limit(ws):
    probe = run(ws, "pass", max_processes=24)
    if probe.isolation["limits"]["processes"].startswith("NONE"):
        pytest.skip("no writable pids cgroup here")
    code = ("import os, time\nn = 0\n"
            "for _ in range(400):\n"
            "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
            "    if pid == 0:\n        time.sleep(30); os._exit(0)\n"
            "    n += 1\n"
            "print(n)\n")
    res = run(ws, code, max_processes=24)
    assert res.ok, res.stderr
    assert int(res.stdout.strip()) <= 24
    assert res.isolation["limit_events"].get("forks_refused", 0) >= 1


@needs_bwrap
def test_memory_limit_holds_for_the_whole_sandbox(ws):
    probe = run(ws, "pass", memory_mb=192)
    if "cgroup" not in probe.isolation["limits"]["memory"]:
        pytest.skip("no writable memory cgroup here")
    # four processes of 100 MB each: every one fits the per-process limit, together they do not
    code = ("import os, time\npids = []\n"
            "for _ in range(4):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        x = b'\\x01' * (100 << 20); time.sleep(1.5); os._exit(0)\n"
            "    pids.append(pid)\n"
            "ok = sum(os.waitpid(p, 0)[1] == 0 for p in pids)\n"
            "print('survivors', ok)\n")
    res = run(ws, code, memory_mb=192)
    assert "survivors 4" not in res.stdout, res.stdout
    assert res.isolation["limit_events"].get("oom_kills", 0) >= 1
    single = run(ws, "x = b'\\x01' * (100 << 20); print('fits')", memory_mb=192)
    assert single.ok and "fits" in single.stdout  # one such process alone is fine


@needs_bwrap
def test_tmp_is_a_size_limited_private_tmpfs(ws):
    code = ("import os\nn = 0\nchunk = b'x' * (1 << 20)\n"
            "try:\n"
            "    with open('/tmp/fill', 'wb') as fh:\n"
            "        for _ in range(400):\n            fh.write(chunk); fh.flush(); n += 1\n"
            "except OSError as e:\n    print('full at', n, e.errno)\n")
    res = run(ws, code)
    assert res.ok and "full at" in res.stdout and int(res.stdout.split()[2]) <= bwrap_mod.TMP_BYTES >> 20
    assert not Path("/tmp/fill").exists()


# ------------------------------------------------------------------ engine choice and reporting
def test_missing_bubblewrap_is_one_clear_error(ws, monkeypatch):
    monkeypatch.setattr(bwrap_mod, "find_bwrap", lambda: None)
    with pytest.raises(SandboxViolation, match="bubblewrap") as info:
        run(ws, "open('ran', 'w')")
    assert "apt-get install bubblewrap" in str(info.value) and 'engine = "legacy"' in str(info.value)
    assert not (ws / "ran").exists()


@needs_bwrap
def test_engine_is_a_policy_setting_and_legacy_is_explicit(ws):
    pol = loads('[policy]\nname = "p"\nversion = "1"\n[sandbox]\nengine = "legacy"\nmax_processes = 50\n')
    assert pol.sandbox.engine == "legacy" and pol.sandbox.max_processes == 50
    assert loads('[policy]\nname = "p"\nversion = "1"\n').sandbox.engine == "bwrap"
    with pytest.raises(PolicyError, match="engine"):
        loads('[policy]\nname = "p"\nversion = "1"\n[sandbox]\nengine = "chroot"\n')
    assert run(ws, "pass").isolation["engine"] == "bwrap"
    legacy = Runner(ws, SandboxSettings(network="isolate-if-available", engine="legacy")).run(
        [sys.executable, "-c", "pass"])
    assert legacy.isolation["engine"] == "legacy"


@needs_bwrap
def test_isolation_report_is_json_and_names_the_limit_mechanisms(ws):
    res = run(ws, "pass")
    json.dumps(res.isolation)
    iso = res.isolation
    assert iso["network"] and iso["filesystem"] and iso["pid_namespace"] and iso["ipc_namespace"]
    assert iso["seccomp"] and iso["capabilities_dropped"] and iso["sys"] == "absent"
    assert set(iso["limits"]) == {"processes", "memory", "cpu", "disk", "open_files"}
    assert "per process" in iso["limits"]["memory"]


@needs_bwrap
def test_setup_failure_never_runs_the_command(ws, monkeypatch):
    # a protected folder that vanishes between the plan and the mount: bubblewrap stops, nothing runs
    (ws / "gone").mkdir()
    real = bwrap_mod.build

    def build(**kw):
        plan = real(**kw)
        os.rmdir(ws / "gone")
        return plan

    monkeypatch.setattr(bwrap_mod, "build", build)
    with pytest.raises(SandboxViolation, match="setup failed"):
        Runner(ws, SandboxSettings(network="isolate", filesystem="confine"),
               readonly=(str(ws / "gone"),)).run([sys.executable, "-c", "open('ran', 'w')"])
    assert not (ws / "ran").exists()


def test_too_old_bubblewrap_is_refused_by_name(ws, tmp_path, monkeypatch):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bubblewrap 0.6.1'\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setattr(bwrap_mod, "find_bwrap", lambda: str(fake))
    with pytest.raises(SandboxViolation, match=r"0\.6\.1 .* too old"):
        run(ws, "open('ran', 'w')")
    assert not (ws / "ran").exists()
