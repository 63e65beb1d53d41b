"""Runs every benchmarks/bench_*.py in turn and prints their figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE).returncode != 0:
            failed.append(script.name)
    print("all benchmarks met their targets" if not failed else f"missed or failed: {', '.join(failed)}")
    sys.exit(1 if failed else 0)
