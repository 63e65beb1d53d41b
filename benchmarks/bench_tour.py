"""Times the demo tour and the quick presets against their budgets.

Targets: `alignlab demo` (the tour) under 10 minutes; `alignlab run off-switch-game --quick`
under 30 seconds; `alignlab run --all --quick` is reported. Run: .venv/bin/python benchmarks/bench_tour.py
"""

from __future__ import annotations

import sys

from _util import alignlab, figure


def main() -> int:
    ok = True
    seconds, proc = alignlab("run", "off-switch-game", "--quick")
    if proc.returncode != 0:
        print(proc.stderr)
        return 1
    ok &= figure("run off-switch-game --quick (wall)", seconds, "s", "target", 30.0, lower_is_better=True)
    seconds, proc = alignlab("demo")
    if proc.returncode != 0:
        print(proc.stderr)
        return 1
    ok &= figure("demo (the whole tour, wall)", seconds, "s", "target", 600.0, lower_is_better=True)
    seconds, proc = alignlab("run", "--all", "--quick")
    ok &= proc.returncode == 0
    figure("run --all --quick (wall)", seconds, "s", "tour budget", 600.0, lower_is_better=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
