"""Sandboxed subprocesses: argv only (no shell), scrubbed environment, no network, limits, output caps.

The isolation itself is done by `_launch.py` (namespaces, mounts, rlimits); this module
builds the environment from an allowlist (nothing of the parent's leaks unless the policy
names it), enforces the wall-clock limit by killing the whole process group, caps the bytes
read from stdout/stderr, and reports which isolation was actually achieved.
"""

from __future__ import annotations

import functools
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from alignlab.controls.policy import SandboxSettings
from alignlab.controls.sandbox import SandboxViolation

LAUNCHER = str(Path(__file__).with_name("_launch.py"))
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass
class RunResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False
    truncated: bool = False
    duration_s: float = 0.0
    isolation: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def summary(self) -> dict:
        return {"returncode": self.returncode, "timed_out": self.timed_out, "truncated": self.truncated,
                "duration_s": round(self.duration_s, 4), "isolation": self.isolation,
                "stdout_bytes": len(self.stdout), "stderr_bytes": len(self.stderr)}


def scrubbed_env(settings: SandboxSettings, workspace: Path) -> dict[str, str]:
    """A fresh environment: fixed safe values, the policy's `env`, and only the named passthrough variables."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:{BASE_PATH}",
        "HOME": str(workspace),
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
    }
    for name in settings.env_passthrough:
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(settings.env)
    return env


@functools.lru_cache(maxsize=None)
def capabilities() -> dict:
    """Probe once which isolation this machine allows (run the launcher with a trivial command)."""
    out = {}
    for label, net, fs in (("network", "isolate", "none"), ("filesystem", "allow", "confine")):
        r = Runner.__new__(Runner)
        r.root, r.settings = Path("/"), SandboxSettings(network=net, filesystem=fs, timeout_s=10)
        r.readonly, r.hide_extra = (), ()
        res = r._spawn([sys.executable, "-I", "-S", "-c", "pass"], Path(os.getcwd()).resolve(), probe=True)
        out[label] = bool(res.returncode == 0 and res.isolation.get(label))
    return out


class Runner:
    """Runs argv lists in the workspace under the policy's sandbox settings."""

    def __init__(self, root: str | Path, settings: SandboxSettings, readonly: tuple[str, ...] = (),
                 hide: tuple[str, ...] = ()):
        self.root = Path(root).resolve()
        if self.root == Path("/"):
            raise SandboxViolation("the workspace cannot be the filesystem root")
        self.settings = settings
        self.readonly = readonly  # absolute paths of protected files, bound read-only in the sandbox
        self.hide_extra = hide  # e.g. the guard's state folder (audit log, checkpoints)

    def run(self, argv: list[str], timeout_s: float | None = None,
            readonly: tuple[str, ...] | None = None) -> RunResult:
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise SandboxViolation("argv must be a non-empty list of strings (no shell string)")
        if any("\x00" in a for a in argv):
            raise SandboxViolation("NUL byte in argv")
        if readonly is not None:
            self.readonly = readonly
        return self._spawn(argv, self.root, timeout_s=timeout_s)

    def _spawn(self, argv: list[str], cwd: Path, timeout_s: float | None = None, probe: bool = False) -> RunResult:
        s = self.settings
        timeout = min(timeout_s or s.timeout_s, s.timeout_s)
        rfd, wfd = os.pipe()
        cfg = {
            "workspace": str(cwd), "network": s.network, "filesystem": s.filesystem, "status_fd": wfd,
            "hide": [h for h in (*s.hide, *self.hide_extra)],
            "expose": sorted({sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent)}),
            "readonly": list(self.readonly),
            "simulate_no_namespaces": getattr(self, "simulate_no_namespaces", False),
            "limits": {"memory_bytes": s.memory_mb << 20, "cpu_s": int(timeout) + 1,
                       "file_bytes": s.max_file_bytes},
        }
        env = scrubbed_env(s, cwd)
        started = time.monotonic()
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-S", LAUNCHER, json.dumps(cfg), "--", *argv],
                                    cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, pass_fds=(wfd,), start_new_session=True)
        finally:
            os.close(wfd)
        out, err, status_raw, timed_out, truncated = self._collect(proc, rfd, started + timeout, s.max_output_bytes)
        duration = time.monotonic() - started
        try:
            isolation = json.loads(status_raw) if status_raw else {"error": "sandbox launcher reported nothing"}
        except json.JSONDecodeError:
            isolation = {"error": "unreadable launcher status"}
        if not probe and (isolation.get("error") or not status_raw):
            raise SandboxViolation(
                f"sandbox setup failed: {isolation.get('error')}; {err[-300:].decode(errors='replace')}")
        return RunResult(list(argv), proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                         timed_out, truncated, duration, isolation)

    @staticmethod
    def _collect(proc: subprocess.Popen, status_fd: int, deadline: float, cap: int):
        bufs = {"out": bytearray(), "err": bytearray(), "status": bytearray()}
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ, "out")
        sel.register(proc.stderr, selectors.EVENT_READ, "err")
        sel.register(status_fd, selectors.EVENT_READ, "status")
        timed_out = truncated = False
        try:
            while sel.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                for key, _ in sel.select(timeout=min(left, 0.5)):
                    fd = key.fd if isinstance(key.fileobj, int) else key.fileobj.fileno()
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    buf = bufs[key.data]
                    if key.data == "status":
                        buf += chunk[:4096]
                        continue
                    room = cap - len(bufs["out"]) - len(bufs["err"])
                    buf += chunk[:max(room, 0)]
                    if len(chunk) > room:
                        truncated = True
                if truncated:
                    break
        finally:
            sel.close()
            if timed_out or truncated:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            # Drain whatever the status pipe still holds (written before exec).
            try:
                os.set_blocking(status_fd, False)
                while len(bufs["status"]) < 4096:
                    chunk = os.read(status_fd, 4096)
                    if not chunk:
                        break
                    bufs["status"] += chunk
            except (BlockingIOError, OSError):
                pass
            os.close(status_fd)
            proc.stdout.close()
            proc.stderr.close()
        return bytes(bufs["out"]), bytes(bufs["err"]), bytes(bufs["status"]), timed_out, truncated
