"""AgentDojo with and without the guard, full preset (agent controls; Debenedetti et al. 2024,
arXiv:2406.13352).

Runs `alignlab run agent-controls` (default preset: workspace, travel, banking and slack, each with no guard,
the guard with tainted flows denied, and the guard with them sent to a simulated user; plus the test-rigging
coding agent) in a fresh runs folder, then prints each pooled figure with its ratio to the target:
targeted attack success rate under 2% with benign utility above 95%, no language model in the loop.
Needs the optional `agentdojo` package. Run: .venv/bin/python benchmarks/bench_agentdojo.py [--quick] [--keep]
(--quick: the quick preset, slack only; --keep: print the runs folder, whose report.html holds the table).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile

from _util import alignlab, figure

from alignlab.core import registry
from alignlab.core.store import Store
from alignlab.experiments.agent_controls import ASR_TARGET, MODES, UTILITY_TARGET, pooled


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="the quick preset (one suite) instead of all four")
    ap.add_argument("--keep", action="store_true", help="keep the runs folder and write its HTML report")
    args = ap.parse_args()
    runs = tempfile.mkdtemp(prefix="alignlab-bench-agentdojo-")
    seconds, proc = alignlab("run", "agent-controls", *(["--quick"] if args.quick else []), runs_dir=runs)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        return 1
    with Store(runs, readonly=True) as store:
        records = [r for r in store.records("agent-controls-v0") if r.status == "ok"]
    ad = [r for r in records if r.config["benchmark"] == "agentdojo"]
    suites = sorted({r.config["suite"] for r in ad})
    print(f"alignlab run agent-controls{' --quick' if args.quick else ''}: {len(records)} cells in {seconds:.1f} s "
          f"(wall); AgentDojo suites: {', '.join(suites)}; scripted agents, no language model")
    print(f"  {'suite':<10} {'configuration':<14} {'benign utility':>14} {'utility under attack':>21} {'ASR':>7} "
          f"{'ASR tool-call':>13} {'secure utility':>14} {'approvals/run':>13} {'cell s':>7}")
    for r in sorted(ad, key=lambda r: (r.config["suite"], list(MODES).index(r.config["configuration"]))):
        m = r.metrics
        print(f"  {r.config['suite']:<10} {r.config['configuration']:<14} {m['benign_utility']:>14.1%} "
              f"{m['utility_under_attack']:>21.1%} {m['asr']:>7.1%} {m['asr_tool_attacks']:>13.1%} "
              f"{m['secure_utility']:>14.1%} {m['approvals_per_run']:>13.2f} {r.duration_s:>7.1f}")
    meeting = []
    for k in MODES:
        rs = [r for r in ad if r.config["configuration"] == k]
        if not rs:
            continue
        p = pooled(rs)
        print(f"pooled over {len(rs)} suite{'s' if len(rs) > 1 else ''}, {k}: {p['benign_runs']:.0f} benign + "
              f"{p['attacked_runs']:.0f} attacked runs; utility under attack {p['utility_under_attack']:.1%}; "
              f"ASR on tool-call attacks {p['asr_tool_attacks']:.2%}; approvals/run {p['approvals_per_run']:.2f}")
        met_asr = figure(f"  {k}: ASR (pooled)", 100 * p["asr"], "%", "target", 100 * ASR_TARGET, True)
        met_util = figure(f"  {k}: benign utility (pooled)", 100 * p["benign_utility"], "%", "target",
                          100 * UTILITY_TARGET, False)
        if k != "no-guard" and met_asr and met_util:
            meeting.append(k)
    for line in registry.make("experiment", "agent-controls").findings(records):
        print(f"  - {line}")
    print("quoted, not measured: AgentDojo gpt-4o no defence 69.1% / 50.1% / 47.7% ASR; tool_filter 72.2% / "
          "56.3% / 6.8%; earlier scripted baseline 99.0% utility / 97.9% ASR (no guard)")
    if args.keep:
        alignlab("report", runs_dir=runs)
        print(f"runs folder: {runs} (report.html)")
    else:
        shutil.rmtree(runs, ignore_errors=True)
    ok = bool(meeting) and (len(suites) == 4 or args.quick)  # the target is stated on all four suites
    print(f"target (ASR < {ASR_TARGET:.0%} with benign utility > {UTILITY_TARGET:.0%}, pooled over "
          f"{'the quick suite only' if args.quick else 'all four suites'}): "
          f"{'met by ' + ', '.join(meeting) if ok else 'MISSED by every guard configuration (see the figures above)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
