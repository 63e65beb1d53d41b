"""Every side-by-side benchmark gives its arms the same core budget and says on which machine, under what load, it ran:
each benchmarks/bench_*.py calls the shared `_util.pin` (pins every arm to the same cores with one thread count,
prints the machine line before and after), and one that prints a fraction of a peak measures that peak in the run."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
import _util  # noqa: E402

SCRIPTS = sorted(BENCH.glob("bench_*.py"))


def problems(source: str) -> list[str]:
    """What a benchmark script's source lacks: the shared pinning helper imported from _util and called, and, where it
    prints anything about a peak, a call that measures one."""
    tree = ast.parse(source)
    imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "_util"
                for a in n.names}
    called = {n.func.id if isinstance(n.func, ast.Name) else n.func.attr for n in ast.walk(tree)
              if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))}
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    texts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
             and id(n) not in docstrings]
    out = []
    if "pin" not in imported or "pin" not in called:
        out.append("does not call _util.pin (same cores and threads for every arm, machine line before and after)")
    if any("peak" in t.lower() for t in texts) and not any("peak" in c.lower() for c in called):
        out.append("prints a peak it does not measure in the run")
    return out


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_benchmark_pins_its_arms_and_prints_the_machine(script):
    assert problems(script.read_text()) == [], script.name


def test_the_audit_can_fail():
    """A benchmark that forgets the helper, or prints a peak from a constant, is caught."""
    forgot = 'from _util import figure\n\ndef main():\n    print("machine")\n'
    constant = 'from _util import pin\n\ndef main():\n    pin(None, 1)\n    print(f"{3:.1f}% of peak")\n'
    assert problems(forgot) and problems(constant) == ["prints a peak it does not measure in the run"]
    assert problems(constant.replace("pin(None, 1)", "pin(None, 1)\n    matmul_peak('float32')")) == []


def test_pin_pins_sets_threads_and_prints_the_machine_before_and_after():
    """In a child process: the affinity and thread variables it leaves, and the two machine lines it prints."""
    core = sorted(os.sched_getaffinity(0))[-1]
    code = (f"import os, sys; sys.path.insert(0, {str(BENCH)!r}); import _util; "
            f"c = _util.pin([{core}], 1); print(sorted(os.sched_getaffinity(0)), os.environ['OMP_NUM_THREADS'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, ALIGNLAB_DEVICE="cpu"))
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stderr
    assert lines[0].startswith("machine:") and f"core(s) [{core}] with 1 thread(s)" in lines[0] and "load" in lines[0]
    assert lines[1] == f"[{core}] 1"
    assert lines[2].startswith("after: machine:")


def test_bad_cores_exit_2_with_a_message(capsys):
    with pytest.raises(SystemExit) as exc:
        _util.parse_cores("0,x")
    assert exc.value.code == 2 and "expected core ids" in capsys.readouterr().err
    assert _util.parse_cores("0-2,5") == [0, 1, 2, 5] and _util.parse_cores("") is None
    with pytest.raises(SystemExit) as exc:
        _util.pin([10_000], 1, after=False)
    assert exc.value.code == 2 and "not usable" in capsys.readouterr().err


def test_matmul_peak_is_a_measured_rate():
    small = _util.matmul_peak("float32", size=64, repeats=2)
    assert 1e6 < small < 1e14
