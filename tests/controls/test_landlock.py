"""Landlock as the sandbox's second layer: writes outside the workspace and /tmp refused even where a mount allows
them, TCP bind/connect refused, and a kernel without Landlock named in the run's report rather than passed over."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from alignlab.controls import landlock
from alignlab.controls.policy import SandboxSettings
from alignlab.controls.process import Runner, capabilities

CAPS = capabilities("bwrap")
needs_bwrap = pytest.mark.skipif(not CAPS["filesystem"], reason="bubblewrap missing or namespaces refused here")
ABI, WHY = landlock.abi()
needs_landlock = pytest.mark.skipif(ABI == 0, reason=f"no Landlock here: {WHY}")


@pytest.fixture
def ws(tmp_path):
    d = tmp_path / "ws"
    d.mkdir()
    return d


def run(ws, code, **settings):
    settings = {"network": "isolate", "filesystem": "confine", "timeout_s": 60, **settings}
    return Runner(ws, SandboxSettings(**settings)).run([sys.executable, "-c", code])


PROBE = r"""
import json, os, socket
out = {}
def w(name, path):
    try:
        with open(path, "w") as fh:
            fh.write("x")
        out[name] = "written"
    except OSError as e:
        out[name] = e.errno
w("workspace", "ok.txt"); w("tmp", "/tmp/ok"); w("dev_null", "/dev/null"); w("dev_shm", "/dev/shm/ok")
w("proc_comm", "/proc/self/comm")  # writable under bubblewrap's /proc: the process's own name
s = socket.socket()
try:
    s.bind(("127.0.0.1", 0)); out["bind"] = "bound"
except OSError as e:
    out["bind"] = e.errno
try:
    socket.create_connection(("127.0.0.1", 9), timeout=2); out["connect"] = "connected"
except OSError as e:
    out["connect"] = e.errno
out["read_usr"] = len(open("/usr/bin/env", "rb").read(4))
out["list_root"] = len(os.listdir("/")) > 0
print(json.dumps(out))
"""


@needs_bwrap
@needs_landlock
def test_writes_outside_workspace_and_tcp_are_refused_inside_the_sandbox(ws):
    res = run(ws, PROBE)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["workspace"] == out["tmp"] == out["dev_null"] == out["dev_shm"] == "written"
    assert out["proc_comm"] == 13  # EACCES: a write bubblewrap leaves possible, refused by Landlock
    assert out["read_usr"] == 4 and out["list_root"]
    if ABI >= 4:
        assert out["bind"] == 13 and out["connect"] == 13  # EACCES, not ECONNREFUSED: refused before any packet
    ll = res.isolation["landlock"]
    assert ll["applied"] and ll["abi"] == ABI
    assert ("TCP bind and connect refused" if ABI >= 4 else "ABI < 4") in ll["network"]


@needs_bwrap
@needs_landlock
def test_network_allowed_and_filesystem_none_are_left_to_the_policy(ws):
    res = run(ws, PROBE, network="allow", filesystem="none")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["bind"] == "bound" and out["proc_comm"] == "written"
    assert "not restricted" in res.isolation["landlock"]["filesystem"]


@needs_landlock
def test_a_folder_the_mounts_leave_writable_is_refused_once_restricted(tmp_path):
    (tmp_path / "allowed").mkdir()
    (tmp_path / "other").mkdir()
    code = ("import json, sys\nfrom alignlab.controls import landlock\n"
            "rep = landlock.restrict([sys.argv[1]], deny_tcp=False)\n"
            "open(sys.argv[1] + '/f', 'w').write('x')\n"
            "try:\n    open(sys.argv[2] + '/f', 'w'); print('ESCAPED')\nexcept PermissionError:\n    pass\n"
            "print(json.dumps(rep))\n")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "allowed"), str(tmp_path / "other")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "ESCAPED" not in res.stdout and json.loads(res.stdout.splitlines()[-1])["applied"]
    assert (tmp_path / "allowed" / "f").exists() and not (tmp_path / "other" / "f").exists()


def test_a_kernel_without_landlock_is_reported_not_passed_over(monkeypatch):
    monkeypatch.setattr(landlock, "abi", lambda: (0, "the kernel has no Landlock (ENOSYS)"))
    rep = landlock.restrict(["/tmp"])
    assert rep == {"applied": False, "abi": 0, "reason": "the kernel has no Landlock (ENOSYS)"}


def test_rights_follow_the_abi():
    assert landlock.handled_fs(1, reads=False) & landlock.FS["refer"] == 0
    assert landlock.handled_fs(3, reads=False) & landlock.FS["truncate"]
    assert landlock.handled_fs(5, reads=True) & landlock.FS["read_file"]
    assert not landlock.handled_fs(7, reads=False) & (landlock.FS["read_file"] | landlock.FS["execute"])
