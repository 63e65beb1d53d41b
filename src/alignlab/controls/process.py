"""Sandboxed subprocesses: argv only (no shell), scrubbed environment, no network, limits, output caps.

Two engines, chosen by the policy's `[sandbox] engine`:

- "bwrap" (default): bubblewrap builds the sandbox (`bwrap.py`: every namespace, an allow-list
  filesystem, no capabilities, a seccomp filter); sandbox-wide limits come from a cgroup per run
  (`cgroups.py`: processes, memory, CPU), per-process ones from setrlimit (`_bwrap_exec.py`). A
  machine without bubblewrap gets one error naming the package, never a weaker sandbox.
- "legacy": the older hand-made launcher `_launch.py` (unshare(2) + mounts), kept only as an
  explicit choice: it leaves the host's /dev, /proc/sys, /sys and every folder not hidden visible.

This module builds the environment from an allowlist (nothing of the parent's leaks unless the
policy names it), enforces the wall-clock limit by killing the whole process group (and the
run's cgroup), caps the bytes read from stdout/stderr, and reports which isolation and which limit
mechanisms were actually in force.
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

from alignlab.controls import bwrap as bwrap_mod
from alignlab.controls import quota as quota_mod
from alignlab.controls import seccomp_bpf
from alignlab.controls.cgroups import Limits, SandboxCgroup
from alignlab.controls.policy import SandboxSettings
from alignlab.controls.sandbox import SandboxViolation

LAUNCHER = str(Path(__file__).with_name("_launch.py"))
BWRAP_SHIM = str(Path(__file__).with_name("_bwrap_exec.py"))
QUOTA_SHIM = str(Path(__file__).with_name("_quota_exec.py"))
OPEN_FILES = 256
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
FROM_SETTINGS = -1  # Runner's workspace quota when not given: the settings' (policy [sandbox].workspace_quota_mb)


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


def capabilities(engine: str | None = None) -> dict:
    """Which isolation this machine allows with `engine` (default: the default engine), probed once."""
    return dict(_capabilities(engine or SandboxSettings().engine))


@functools.lru_cache(maxsize=None)
def _capabilities(engine: str) -> tuple:
    if engine == "bwrap":
        exe = bwrap_mod.find_bwrap()
        ok = exe is not None and not bwrap_mod.version_problem(exe) and bwrap_mod.namespaces_available(exe)[0]
        return (("network", ok), ("filesystem", ok))
    out = {}
    for label, net, fs in (("network", "isolate", "none"), ("filesystem", "allow", "confine")):
        r = Runner.__new__(Runner)
        r.root, r.settings = Path("/"), SandboxSettings(network=net, filesystem=fs, timeout_s=10, engine="legacy")
        r.readonly, r.hide_extra = (), ()
        res = r._spawn([sys.executable, "-I", "-S", "-c", "pass"], Path(os.getcwd()).resolve(), probe=True)
        out[label] = bool(res.returncode == 0 and res.isolation.get(label))
    return tuple(out.items())


def _expose() -> list[str]:
    """The Python installation the sandboxed `python` runs from (the venv and its base), bound read-only."""
    return sorted({sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent)})


class Runner:
    """Runs argv lists in the workspace under the policy's sandbox settings."""

    def __init__(self, root: str | Path, settings: SandboxSettings, readonly: tuple[str, ...] = (),
                 hide: tuple[str, ...] = (), workspace_quota_bytes: int | None = FROM_SETTINGS):
        self.root = Path(root).resolve()
        if self.root == Path("/"):
            raise SandboxViolation("the workspace cannot be the filesystem root")
        self.settings = settings
        self.readonly = readonly  # absolute paths of protected files, bound read-only in the sandbox
        self.hide_extra = hide  # e.g. the guard's state folder (audit log, checkpoints)
        if workspace_quota_bytes == FROM_SETTINGS:
            workspace_quota_bytes = (settings.workspace_quota_mb << 20) or None
        self.workspace_quota_bytes = workspace_quota_bytes  # bytes a run may write to the workspace (None: no quota)

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
        if self.settings.engine == "legacy":
            return self._spawn_legacy(argv, cwd, timeout_s, probe)
        return self._spawn_bwrap(argv, cwd, timeout_s)

    # ------------------------------------------------------------------ bubblewrap engine
    def _spawn_bwrap(self, argv: list[str], cwd: Path, timeout_s: float | None = None) -> RunResult:
        s = self.settings
        timeout = min(timeout_s or s.timeout_s, s.timeout_s)
        want_net, want_fs = s.network != "allow", s.filesystem != "none"
        exe = bwrap_mod.find_bwrap()
        if exe is None:
            raise SandboxViolation(bwrap_mod.INSTALL_HINT)
        too_old = bwrap_mod.version_problem(exe)
        if too_old:
            raise SandboxViolation(too_old)
        ok, why = ((False, "simulated: namespaces refused") if getattr(self, "simulate_no_namespaces", False)
                   else bwrap_mod.namespaces_available(exe))
        if not ok and ((want_net and s.network == "isolate") or (want_fs and s.filesystem == "confine")):
            raise SandboxViolation(f"cannot create namespaces with bubblewrap ({why}); the policy requires isolation")
        mem = s.memory_mb << 20
        cg = SandboxCgroup.create(Limits(memory_bytes=mem, pids=s.max_processes + 2, cpus=s.cpus))
        rlimits = {"RLIMIT_AS": mem, "RLIMIT_CPU": int(timeout) + 1, "RLIMIT_FSIZE": s.max_file_bytes,
                   "RLIMIT_CORE": 0, "RLIMIT_NOFILE": OPEN_FILES}
        rfd, wfd = os.pipe()
        plan, extra_fds, quota, quota_note = None, [], None, ""
        try:
            if ok and want_fs and self.workspace_quota_bytes:
                try:
                    quota = quota_mod.WorkspaceQuota.create(str(cwd), self.workspace_quota_bytes)
                except OSError as exc:
                    quota_note = str(exc)
            if ok:
                try:
                    prog, seccomp_note = seccomp_bpf.build(), f"classic BPF ({seccomp_bpf.native_arch()})"
                except seccomp_bpf.Unsupported as exc:
                    prog, seccomp_note = None, f"not applied: {exc}"
                plan = bwrap_mod.build(workspace=str(cwd), network=want_net, confine=want_fs, expose=_expose(),
                                       readonly=list(self.readonly), hide=[*s.hide, *self.hide_extra], seccomp=prog,
                                       status_fd=wfd)
                args_fd = os.memfd_create("alignlab-bwrap-args", 0)
                extra_fds = [args_fd, *plan.fds]
                plan.fds = []
                os.write(args_fd, b"".join(os.fsencode(x) + b"\0" for x in plan.args))
                os.lseek(args_fd, 0, os.SEEK_SET)
                command = [exe, "--args", str(args_fd), "--", *argv]
                if quota is not None:  # the overlay is mounted just before bubblewrap starts (_quota_exec.py)
                    command = [sys.executable, "-I", "-S", QUOTA_SHIM,
                               json.dumps({"status_fd": wfd, **quota.shim_config()}), "--", *command]
                isolation = dict(plan.isolation, seccomp_filter=seccomp_note)
            else:  # an "-if-available" policy on a machine that refuses namespaces: explicit, and reported
                command = list(argv)
                isolation = {"engine": "none", "network": False, "filesystem": False, "pid_namespace": False,
                             "reason": f"bubblewrap cannot create namespaces here ({why})"}
            isolation["limits"] = self._limit_labels(cg, timeout, mem, bool(plan), quota, quota_note)
            cfg = {"status_fd": wfd, "cgroup_procs": cg.procs, "rlimits": rlimits, "bwrap": bool(plan),
                   # where the command starts in `command`: the sandbox's inner stage goes right before it (a
                   # search for "--" would stop at the quota shim's and run the inner stage outside bubblewrap)
                   "command_at": len(command) - len(argv)}
            env = scrubbed_env(s, cwd)
            started = time.monotonic()
            try:
                proc = subprocess.Popen([sys.executable, "-I", "-S", BWRAP_SHIM, json.dumps(cfg), "--", *command],
                                        cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, pass_fds=(wfd, *extra_fds), start_new_session=True)
            finally:
                for fd in (wfd, *extra_fds):
                    os.close(fd)
                wfd, extra_fds = -1, []
            status_fd, rfd = rfd, -1  # _collect closes it
            out, err, status_raw, timed_out, truncated = self._collect(proc, status_fd, started + timeout,
                                                                       s.max_output_bytes)
            duration = time.monotonic() - started
            cg.kill()  # anything left (the PID namespace already died with the command)
            events = cg.events()
            if quota is not None:  # nothing runs in the sandbox any more: copy what it wrote back
                usage = quota.usage()
                outside: list[set[str]] = []  # hard links to outside files, found only if a linked file changed

                def linked_inside(rel: str) -> bool:
                    if not outside:
                        outside.append(set(bwrap_mod.scan_workspace(str(cwd))[0]))
                    return str(cwd / rel) not in outside[0]

                isolation["workspace_quota"] = dict(usage, **quota.sync_back(self._skip_top(cwd), linked_inside))
                if usage["full"]:
                    events["workspace_quota_full"] = usage["limit_bytes"]
                    err += (f"\nalignlab-sandbox: the workspace write quota ({usage['limit_bytes']} bytes) was "
                            "used up; writes beyond it failed with ENOSPC (No space left on device)\n").encode()
        finally:
            if quota is not None:
                quota.close()
            for fd in (rfd, wfd, *extra_fds):
                if fd >= 0:
                    os.close(fd)
            cg.remove()
            if plan is not None:
                plan.close()
        status = _json_docs(status_raw)
        if any("error" in d for d in status):
            raise SandboxViolation(f"sandbox setup failed: {next(d['error'] for d in status if 'error' in d)}")
        if plan is not None and not any("exit-code" in d for d in status) and not (timed_out or truncated):
            # bubblewrap reports an exit code only once its setup finished and the command was started
            why = err.decode(errors="replace").strip()[-300:] or f"bwrap exited with {proc.returncode}"
            raise SandboxViolation(f"sandbox setup failed (bubblewrap): {why}"
                                   + (f"; limit events {events}" if events else ""))
        if events:
            isolation["limit_events"] = events
        return RunResult(list(argv), proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                         timed_out, truncated, duration, isolation)

    def _skip_top(self, cwd: Path) -> tuple[str, ...]:
        """Top-level names in the workspace that the sandbox hides (the guard's state): never synced back."""
        out = []
        for h in (*self.settings.hide, *self.hide_extra):
            h = os.path.normpath(h)
            if bwrap_mod.under(h, str(cwd)) and h != str(cwd):
                out.append(os.path.relpath(h, cwd).split("/")[0])
        return tuple(out)

    def _limit_labels(self, cg: SandboxCgroup, timeout: float, mem: int, confined: bool,
                      quota: quota_mod.WorkspaceQuota | None = None, quota_note: str = "") -> dict:
        s, m = self.settings, cg.mechanisms
        per_proc = f"RLIMIT_AS={mem} per process"
        return {
            "processes": (f"{m['pids']} for the whole sandbox ({s.max_processes} + bubblewrap's 2)" if "pids" in m
                          else "NONE: no writable pids cgroup (RLIMIT_NPROC does not bind uid 0)"),
            "memory": (f"{m['memory']} for the whole sandbox; {per_proc}" if "memory" in m
                       else f"{per_proc} only (no writable memory cgroup)"),
            "cpu": ((f"{m['cpu']} for the whole sandbox; " if "cpu" in m else "")
                    + f"RLIMIT_CPU={int(timeout) + 1}s per process; wall clock {timeout:g}s for the whole sandbox"),
            "disk": ((f"/tmp tmpfs {bwrap_mod.TMP_BYTES >> 20} MiB and /dev/shm {bwrap_mod.SHM_BYTES >> 20} MiB per "
                      "sandbox; " if confined else "")
                     + f"RLIMIT_FSIZE={s.max_file_bytes} per file; "
                     + (f"workspace: {quota.limit_bytes} bytes written per run for the whole sandbox (overlay on a "
                        "size-limited tmpfs)" if quota is not None else
                        f"no sandbox-wide quota on the workspace{f' ({quota_note})' if quota_note else ''}")),
            "open_files": f"RLIMIT_NOFILE={OPEN_FILES} per process",
        }

    # ------------------------------------------------------------------ legacy engine (explicit only)
    def _spawn_legacy(self, argv: list[str], cwd: Path, timeout_s: float | None = None,
                      probe: bool = False) -> RunResult:
        s = self.settings
        timeout = min(timeout_s or s.timeout_s, s.timeout_s)
        rfd, wfd = os.pipe()
        cfg = {
            "workspace": str(cwd), "network": s.network, "filesystem": s.filesystem, "status_fd": wfd,
            "hide": [h for h in (*s.hide, *self.hide_extra)],
            "expose": _expose(),
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
        isolation["engine"] = "legacy"
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


def _json_docs(raw: bytes) -> list[dict]:
    """The JSON objects written one after another on the status descriptor (bwrap's JSON lines)."""
    text, docs, i = raw.decode("utf-8", "replace"), [], 0
    dec = json.JSONDecoder()
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            break
        if isinstance(obj, dict):
            docs.append(obj)
    return docs
