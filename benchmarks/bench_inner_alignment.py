"""Times the learned-goal experiments: goal misgeneralization, corrigibility, power seeking, unwatched, phases.

Papers: Langosco et al. 2022 (arXiv:2105.14111), Hadfield-Menell et al. 2017 (arXiv:1611.08219), Turner et al.
2021 (arXiv:1912.01683), Leike et al. 2017 (arXiv:1711.09883), Pan, Bhatia & Steinhardt 2022 (arXiv:2201.03544).
Target: their quick presets together under 3 minutes (each run in a fresh runs folder, the runner's default
workers). `--full` also times the default presets (tens of minutes on 2 cores), reported without a target.
Run: .venv/bin/python benchmarks/bench_inner_alignment.py [--full] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from _util import alignlab, figure, pin

EXPERIMENTS = ("goal-misgeneralization", "corrigibility", "power-seeking", "unwatched", "phase-transitions")
QUICK_TARGET_S = 180.0


def timed(name: str, *flags: str) -> float | None:
    seconds, proc = alignlab("run", name, *flags, runs_dir=tempfile.mkdtemp(prefix=f"alignlab-{name}-"))
    if proc.returncode != 0:
        print(f"{name} {' '.join(flags)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}", flush=True)
        return None
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="Also time the default presets.")
    parser.add_argument("--only", nargs="+", choices=EXPERIMENTS, default=list(EXPERIMENTS))
    args = parser.parse_args()
    pin(sorted(os.sched_getaffinity(0)), 1)  # every run on the same cores, one thread each; machine line twice
    total, ok = 0.0, True
    for name in args.only:
        seconds = timed(name, "--quick")
        if seconds is None:
            return 1
        total += seconds
        print(f"  {name} --quick: {seconds:.1f} s", flush=True)
    ok &= figure(f"quick presets of {len(args.only)} experiments (wall, summed)", total, "s", "target",
                 QUICK_TARGET_S, lower_is_better=True)
    if args.full:
        for name in args.only:
            seconds = timed(name)
            if seconds is None:
                return 1
            print(f"  {name} (default preset): {seconds:.1f} s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
