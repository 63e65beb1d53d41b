"""Small helpers shared by the benchmark scripts: pinning every arm to the same cores, the machine line before and
after, the matmul peak of the run, timing a CLI command, printing a figure."""

from __future__ import annotations

import atexit
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


def machine_line(cores: list[int], threads: int, arms: str | None = None) -> str:
    """One line: the CPU, the flags that decide speed and dtype, the cores and threads of the arms, the load.
    `arms` replaces "with N thread(s)" where the arms state their own thread settings (same cores for all)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
        flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []))
    except OSError:
        model, flags = "?", set()
    have = [f for f in FLAGS_OF_INTEREST if f in flags]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {model}; flags {' '.join(have) or 'none of ' + ' '.join(FLAGS_OF_INTEREST)}; "
            f"{os.cpu_count()} logical CPUs; every arm on core(s) {cores} "
            f"{arms if arms is not None else f'with {threads} thread(s)'}; load {load}"
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


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def pin(cores: list[int] | None = None, threads: int = 1, arms: str | None = None, after: bool = True) -> list[int]:
    """Give every arm of a benchmark the same core budget: pin this process (and so every subprocess it starts, which
    inherits the affinity) to `cores` (default: the first `threads` cores it may use), set the thread count to
    `threads` (OMP/MKL/OpenBLAS variables for subprocesses; torch's intra-op threads when torch is loaded, and an
    OMP_NUM_THREADS read at torch's import), print the machine line now and, with `after`, again at exit (the load
    after the run). `arms`: where the arms set their own thread counts, say so in the machine line (the count
    here is then only the default). Returns the cores."""
    allowed = sorted(os.sched_getaffinity(0))
    cores = sorted(cores) if cores else allowed[:max(1, threads)]
    bad = [c for c in cores if c not in allowed]
    if bad:
        print(f"--cores {bad}: not usable by this process; valid: {allowed}", file=sys.stderr)
        raise SystemExit(2)
    os.sched_setaffinity(0, set(cores))
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    print(machine_line(cores, threads, arms), flush=True)
    if after:
        atexit.register(lambda: print("after: " + machine_line(cores, threads, arms), flush=True))
    return cores


def parse_cores(text: str) -> list[int] | None:
    """`--cores` text ("0,1" or "2-3"; empty: None) as a list of core ids; a clear exit (2) when malformed."""
    if not text.strip():
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            out += list(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        print(f"--cores {text!r}: expected core ids like 0 or 0,1 or 0-3", file=sys.stderr)
        raise SystemExit(2) from None
    return out


def matmul_peak(dtype: str, size: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of torch.matmul on two size x size matrices in `dtype` (float32 / bfloat16; 2 size^3 FLOPs per
    product), best of `repeats` after a warm-up, at the threads and cores in force: the machine's own peak, to be
    measured in the same run as the figures divided by it."""
    import torch

    dt = getattr(torch, dtype)
    a, b = torch.randn(size, size).to(dt), torch.randn(size, size).to(dt)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size ** 3 / best
