"""Times the spec-gaming experiment (the specification gaming suite).

Targets: `alignlab run spec-gaming --quick` under 60 s; the full preset (5 seeds) under
10 minutes (run with --full; it takes minutes). Run: .venv/bin/python benchmarks/bench_spec_gaming.py [--full]
"""

from __future__ import annotations

import os
import sys

from _util import alignlab, figure, pin


def main() -> int:
    pin(sorted(os.sched_getaffinity(0)), 1)  # the runs' processes: these cores, one thread each; machine line twice
    ok = True
    seconds, proc = alignlab("run", "spec-gaming", "--quick")
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:])
        return 1
    ok &= figure("run spec-gaming --quick (wall)", seconds, "s", "target", 60.0, lower_is_better=True)
    if "--full" in sys.argv:
        seconds, proc = alignlab("run", "spec-gaming")
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:])
            return 1
        ok &= figure("run spec-gaming (full preset, 5 seeds, wall)", seconds, "s", "target", 600.0,
                     lower_is_better=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
