"""Sandbox-wide limits with control groups: one cgroup per sandboxed run, removed after it.

cgroups(7): a process and all its descendants stay in the cgroup they are started in, so
limits written there bound the whole sandbox (every process the command forks), not each
process alone as setrlimit does. Used where the hierarchy is writable (as root, or a
delegated subtree):

- cgroup v2 (the unified hierarchy): `pids.max`, `memory.max` (+ `memory.swap.max = 0`),
  `cpu.max`, for the controllers the parent hands down; `cgroup.kill` ends every process.
  The new cgroup is made beside ours (v2's "no internal processes" rule forbids enabling
  controllers below a cgroup that holds processes), or below the root; only controllers the
  parent already enables are used (nothing of the host's cgroup configuration is changed).
- cgroup v1 (hybrid machines, where a controller is mounted in its own hierarchy): `pids.max`,
  `memory.limit_in_bytes` (+ `memory.memsw.limit_in_bytes`), `cpu.cfs_quota_us`, for each limit
  v2 could not set.

Whatever neither provides is left to the per-process setrlimit fallback, and `mechanisms`
says which mechanism holds each limit, so the run reports it honestly. The sandbox's launcher
moves itself into the cgroups (writes its pid to each `cgroup.procs`) before it execs bubblewrap.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

PREFIX = "alignlab-sandbox-"


@dataclass(frozen=True)
class Limits:
    memory_bytes: int | None = None
    pids: int | None = None
    cpus: float | None = None


def _unescape(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def _write(path: str, value: str) -> bool:
    try:
        with open(path, "w") as fh:
            fh.write(value)
        return True
    except OSError:
        return False


def _cpu_quota(cpus: float) -> str:
    return str(int(cpus * 100000))


# controller -> hierarchy -> the files that set its limit, in order: (file, value from the limit, required).
# A required write that fails means the limit is not held; the others (swap, the v1 CPU period) are best effort.
WRITES: dict[str, dict[str, tuple[tuple[str, Callable[[Any], str], bool], ...]]] = {
    "pids": {"v2": (("pids.max", str, True),),
             "v1": (("pids.max", str, True),)},
    "memory": {"v2": (("memory.max", str, True), ("memory.swap.max", lambda v: "0", False)),
               "v1": (("memory.limit_in_bytes", str, True), ("memory.memsw.limit_in_bytes", str, False))},
    "cpu": {"v2": (("cpu.max", lambda v: f"{_cpu_quota(v)} 100000", True),),
            "v1": (("cpu.cfs_period_us", lambda v: "100000", True), ("cpu.cfs_quota_us", _cpu_quota, True))},
}


def _apply(d: str, version: str, ctrl: str, value) -> str | None:
    """Write controller `ctrl`'s limit in cgroup folder `d`; the mechanism's label, or None if it did not hold."""
    files = WRITES[ctrl][version]
    for fname, fmt, required in files:
        path = os.path.join(d, fname)
        if not required and not os.path.exists(path):
            continue
        if not _write(path, fmt(value)) and required:
            return None
    shown = f"{value:g} CPUs" if ctrl == "cpu" else value
    return f"cgroup {version} {[f for f, _, req in files if req][-1]}={shown}"  # named by the file holding it


def hierarchies() -> tuple[str | None, dict[str, str]]:
    """(our cgroup v2 folder or None, {v1 controller: our folder in its hierarchy})."""
    mounts_v2: list[tuple[str, str]] = []
    mounts_v1: dict[str, tuple[str, str]] = {}
    for line in _read("/proc/self/mountinfo").splitlines():
        f = line.split()
        try:
            sep = f.index("-")
        except ValueError:
            continue
        root, mp, fstype = _unescape(f[3]), _unescape(f[4]), f[sep + 1]
        if fstype == "cgroup2":
            mounts_v2.append((root, mp))
        elif fstype == "cgroup":
            for opt in f[sep + 3].split(","):
                mounts_v1.setdefault(opt, (root, mp))
    ours_v2, ours_v1 = None, {}
    for line in _read("/proc/self/cgroup").splitlines():
        hid, _, rest = line.partition(":")
        ctrls, _, path = rest.partition(":")
        if hid == "0" and not ctrls:
            for root, mp in mounts_v2:
                d = _inside(mp, root, path)
                if d:
                    ours_v2 = d
                    break
        else:
            for c in ctrls.split(","):
                if c in mounts_v1:
                    d = _inside(mounts_v1[c][1], mounts_v1[c][0], path)
                    if d:
                        ours_v1[c] = d
    return ours_v2, ours_v1


def _inside(mountpoint: str, mount_root: str, path: str) -> str | None:
    if mount_root != "/" and not (path == mount_root or path.startswith(mount_root.rstrip("/") + "/")):
        return None
    rel = path[len(mount_root):] if mount_root != "/" else path
    d = os.path.normpath(mountpoint + "/" + rel.lstrip("/"))
    return d if os.path.isdir(d) else None


@dataclass
class SandboxCgroup:
    """The cgroup folders of one run: `procs` lists the files the launcher writes its pid to."""

    dirs: list[str] = field(default_factory=list)
    mechanisms: dict[str, str] = field(default_factory=dict)
    kill_file: str | None = None

    @property
    def procs(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self.dirs]

    @classmethod
    def create(cls, limits: Limits) -> "SandboxCgroup":
        """Make the cgroups and write the limits; never raises (what failed is simply not in `mechanisms`)."""
        cg = cls()
        if os.environ.get("ALIGNLAB_SANDBOX_NO_CGROUPS"):  # tests: behave like a machine without cgroups
            return cg
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            ours_v2, ours_v1 = hierarchies()
        except Exception:  # noqa: BLE001 - an unreadable /proc: no cgroups
            return cg
        want = {"pids": limits.pids, "memory": limits.memory_bytes, "cpu": limits.cpus}
        want = {k: v for k, v in want.items() if v}
        if ours_v2:
            cg._v2(ours_v2, name, want)
        for ctrl in [c for c in want if c not in cg.mechanisms]:
            if ctrl in ours_v1:
                cg._v1(ours_v1[ctrl], ctrl, name, want[ctrl])
        return cg

    def _v2(self, ours: str, name: str, want: dict) -> None:
        # Beside ours (the parent hands its enabled controllers to all its children), else below ours (no
        # controllers unless ours is the root, which is exempt from the no-internal-processes rule: still
        # gives cgroup.kill). Controllers are used only where already enabled: no subtree_control is changed.
        is_root = not os.path.exists(os.path.join(ours, "cgroup.type"))
        parents = [ours] if is_root else [os.path.dirname(ours), ours]
        for i, parent in enumerate(parents):
            if not os.path.isfile(os.path.join(parent, "cgroup.subtree_control")):
                continue
            enabled = set(_read(os.path.join(parent, "cgroup.subtree_control")).split())
            if i < len(parents) - 1 and not enabled & set(want):
                continue
            _sweep(parent)
            d = os.path.join(parent, name)
            try:
                os.mkdir(d, 0o755)
            except OSError:
                continue
            self.dirs.append(d)
            have = set(_read(os.path.join(d, "cgroup.controllers")).split())
            for ctrl in [c for c in want if c in have]:
                label = _apply(d, "v2", ctrl, want[ctrl])
                if label:
                    self.mechanisms[ctrl] = label
            if os.path.exists(os.path.join(d, "cgroup.kill")):
                self.kill_file = os.path.join(d, "cgroup.kill")
            return

    def _v1(self, ours: str, ctrl: str, name: str, value) -> None:
        _sweep(ours)
        d = os.path.join(ours, name)
        try:
            os.mkdir(d, 0o755)
        except OSError:
            return
        label = _apply(d, "v1", ctrl, value)
        if label:
            self.dirs.append(d)
            self.mechanisms[ctrl] = label
        else:
            _rmdir(d)

    # ------------------------------------------------------------------ after the run
    def events(self) -> dict:
        """Limit hits: OOM kills, refused forks, peak memory (what the kernel counted)."""
        out: dict = {}
        for d in self.dirs:
            for fname, key, out_key in (("memory.events", "oom_kill", "oom_kills"),
                                        ("memory.oom_control", "oom_kill", "oom_kills"),
                                        ("pids.events", "max", "forks_refused")):
                for line in _read(os.path.join(d, fname)).splitlines():
                    k, _, v = line.partition(" ")
                    if k == key and v.strip().isdigit():
                        out[out_key] = out.get(out_key, 0) + int(v)
            for fname in ("memory.peak", "memory.max_usage_in_bytes"):
                v = _read(os.path.join(d, fname)).strip()
                if v.isdigit():
                    out["memory_peak_bytes"] = int(v)
        return out

    def kill(self) -> None:
        """SIGKILL every process still in the cgroups (cgroup.kill where the kernel has it)."""
        if self.kill_file:
            _write(self.kill_file, "1")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            pids = {int(p) for f in self.procs for p in _read(f).split() if p.isdigit()}
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill()
        for d in reversed(self.dirs):
            _rmdir(d)
        self.dirs = []


def _rmdir(d: str) -> None:
    for _ in range(50):
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


def _sweep(parent: str) -> None:
    """Remove empty sandbox cgroups left by runs whose process died (a crash skips `remove`)."""
    try:
        names = [n for n in os.listdir(parent) if n.startswith(PREFIX)]
    except OSError:
        return
    for n in names:
        try:
            pid = int(n[len(PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            try:
                os.rmdir(os.path.join(parent, n))
            except OSError:
                pass
        except (ValueError, OSError):
            pass
