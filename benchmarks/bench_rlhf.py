"""Times the rlhf-overoptimization experiment (Gao, Schulman, Hilton 2022, arXiv:2210.10760) and prints its headline
figures.

Target: `alignlab run rlhf-overoptimization --quick` under 5 minutes with a cold sample pool (a fresh pool cache;
the converted model is reused). `--full` then runs the full preset (the experiment's default config) in two
stages into one runs folder, `--runs-dir` (kept, so `alignlab --runs-dir DIR report` renders it afterwards):
best-of-n (5 seeds, every remedy; the pool sampled in-process with `--threads` torch threads), then the RL and
DPO cells (`rl_seeds` seeds each, two workers of one thread). It prints the wall time of each stage and the
headline figures: the reward model's held-out accuracy, the baseline's gold peak and fall with 95%
intervals, the remedies' gold peaks, and each RL / DPO cell's fit and seconds per step. Hours on a 2-core CPU.

Run: .venv/bin/python benchmarks/bench_rlhf.py [--full --runs-dir DIR [--threads 2] [--set KEY=VALUE ...]]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from _util import alignlab, figure, pin

EXPERIMENT = "rlhf-overoptimization-v0"


def cold_cache() -> str:
    """A fresh ALIGNLAB_CACHE holding only the converted models (so the pool is sampled again)."""
    from alignlab.lm.models import cache_dir

    tmp = Path(tempfile.mkdtemp(prefix="alignlab-bench-cache-"))
    if (cache_dir() / "models").exists():
        (tmp / "models").symlink_to(cache_dir() / "models", target_is_directory=True)
    return str(tmp)


def stage(label: str, args: list[str], runs_dir: str, env: dict[str, str]) -> float:
    seconds, proc = alignlab(*args, runs_dir=runs_dir, env=env)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        raise SystemExit(f"{label} failed")
    print(f"{label:<52} {seconds:>9.1f} s wall", flush=True)
    return seconds


def headline(runs_dir: str) -> None:
    """The headline figures from the stored records (the experiment's own tables, abridged)."""
    from alignlab.core import registry
    from alignlab.core.store import Store

    registry.load_all()
    with Store(runs_dir, readonly=True) as store:
        records = store.records(EXPERIMENT)
    exp = registry.get("experiment", EXPERIMENT)()
    for table in exp.tables(records):
        if table.title.startswith(("Gao et al.", "Reward-model accuracy")):
            print(f"\n{table.title}\n  " + " | ".join(table.columns))
            for row in table.rows:
                print("  " + " | ".join(str(x) for x in row))
    print()
    for line in exp.findings(records):
        print(f"- {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also run the full preset (hours)")
    parser.add_argument("--runs-dir", default=None, help="runs folder of the full preset (kept)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads while the full pool is sampled")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config overrides for both full stages (e.g. test_prompts=16)")
    args = parser.parse_args()
    pin(sorted(os.sched_getaffinity(0)), 1, arms=f"with 1 thread per process (the full preset's pool sampling: "
                                                  f"{args.threads})")  # every stage the same cores; machine line twice

    cache = cold_cache()
    try:
        seconds = stage("run rlhf-overoptimization --quick (cold pool)", ["run", EXPERIMENT, "--quick"],
                        tempfile.mkdtemp(prefix="alignlab-bench-"), {"ALIGNLAB_CACHE": cache})
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    ok = figure("quick preset, cold pool (wall)", seconds, "s", "target", 300.0, lower_is_better=True)
    if args.full:
        runs = args.runs_dir or tempfile.mkdtemp(prefix="alignlab-bench-rlhf-full-")
        sets = [x for s in args.set for x in ("--set", s)]
        stage("full preset: best-of-n, 5 seeds (pool in-process)",
              ["run", EXPERIMENT, "--set", "optimizers=best-of-n", "--workers", "1", *sets], runs,
              {"OMP_NUM_THREADS": str(args.threads)})
        stage("full preset: RL and DPO cells (2 workers)", ["run", EXPERIMENT, "--workers", "2", *sets], runs, {})
        headline(runs)
        print(f"\nstore: {runs} (alignlab --runs-dir {runs} report)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
