"""Small helpers shared by the benchmark scripts: timing a CLI command, printing a figure."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def alignlab(*args: str, runs_dir: str | None = None,
             env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """Run the CLI in a fresh runs folder (one torch thread unless `env` says otherwise); return (wall seconds,
    completed process)."""
    runs = runs_dir or tempfile.mkdtemp(prefix="alignlab-bench-")
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", COLUMNS="120", **(env or {}))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "alignlab.cli.main", "--runs-dir", runs, *args],
                          capture_output=True, text=True, env=env, cwd=REPO)
    return time.perf_counter() - started, proc


def figure(name: str, value: float, unit: str, anchor_name: str, anchor: float, lower_is_better: bool) -> bool:
    """Print one figure with its ratio to the anchor; return whether it meets the target."""
    ratio = value / anchor if anchor else float("nan")
    ok = value <= anchor if lower_is_better else value >= anchor
    print(f"{name:<44} {value:>12.2f} {unit:<8} anchor {anchor_name} = {anchor:g} {unit}; "
          f"ratio {ratio:.3f} [{'ok' if ok else 'MISSED'}]", flush=True)
    return ok


FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def machine_line(cores: list[int], threads: int) -> str:
    """One line: the CPU, the flags that decide speed and dtype, the cores and threads of the arms, the load."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
        flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []))
    except OSError:
        model, flags = "?", set()
    have = [f for f in FLAGS_OF_INTEREST if f in flags]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {model}; flags {' '.join(have) or 'none of ' + ' '.join(FLAGS_OF_INTEREST)}; "
            f"{os.cpu_count()} logical CPUs; every arm on core(s) {cores} with {threads} thread(s); load {load}"
            f"; device {device_name()}")


def device_name() -> str:
    """Where models run (alignlab.core.device: ALIGNLAB_DEVICE, else a GPU where torch sees one), with the GPU's name;
    torch is imported only when a GPU may be asked for."""
    from alignlab.core import device

    if device.requested() == "cpu":
        return "cpu"
    where = device.resolve()
    if not device.is_cuda(where):
        return where
    import torch

    return f"{where} ({torch.cuda.get_device_name(torch.device(where))})"
