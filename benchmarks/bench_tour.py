"""Times the demo tour and the quick presets against their budgets, and checks the tour's eval intervals.

Targets: `alignlab demo` (the tour) under 10 minutes; `alignlab run off-switch-game --quick`
under 30 seconds; `alignlab run --all --quick` is reported. After the tour, the widest 95% bootstrap
half-width among each behavioural eval's headline metrics (over items, one seed) against +-0.15.
Run: .venv/bin/python benchmarks/bench_tour.py [--demo-only]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from _util import alignlab, figure, pin


def widest_eval_intervals(runs: str) -> list[tuple[str, str, float, int]]:
    """Per eval of the tour's behavioural-evals cells: (eval, metric, half-width, n) of its widest headline
    metric, the half-width being the larger side of the bootstrap interval."""
    from alignlab.core import registry
    from alignlab.core.store import Store

    with Store(runs, readonly=True) as store:
        records = [r for r in store.records("behavioural-evals-v0") if r.status == "ok"]
    out = []
    for r in sorted(records, key=lambda r: r.config["eval"]):
        metrics = r.data["metrics"]
        halves = [(max(m["value"] - m["lo"], m["hi"] - m["value"]), name, m["n"])
                  for name in registry.get("eval", r.config["eval"]).headline
                  if (m := metrics.get(name)) and m["n"] > 0]
        if halves:
            half, name, n = max(halves)
            out.append((r.config["eval"], name, half, n))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-only", action="store_true", help="Time the tour alone (skip the two quick runs).")
    args = parser.parse_args()
    pin(sorted(os.sched_getaffinity(0)), 1)  # every run on the same cores, one thread each; machine line twice
    ok = True
    if not args.demo_only:
        seconds, proc = alignlab("run", "off-switch-game", "--quick")
        if proc.returncode != 0:
            print(proc.stderr)
            return 1
        ok &= figure("run off-switch-game --quick (wall)", seconds, "s", "target", 30.0, lower_is_better=True)
    runs = tempfile.mkdtemp(prefix="alignlab-tour-")
    seconds, proc = alignlab("demo", runs_dir=runs)
    if proc.returncode != 0:
        print(proc.stderr)
        return 1
    ok &= figure("demo (the whole tour, wall)", seconds, "s", "target", 600.0, lower_is_better=True)
    for line in proc.stdout.splitlines():  # each experiment's own time, as the runner printed it
        if " ok, " in line and " cells in " in line:
            print(f"  {line.strip()}")
    for name, metric, half, n in widest_eval_intervals(runs):  # reported beside the timing, not part of its target
        figure(f"{name.removesuffix('-v0')}: widest interval ({metric}, n={n})", half, "", "target", 0.15,
               lower_is_better=True)
    if not args.demo_only:
        seconds, proc = alignlab("run", "--all", "--quick")
        ok &= proc.returncode == 0
        figure("run --all --quick (wall)", seconds, "s", "tour budget", 600.0, lower_is_better=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
