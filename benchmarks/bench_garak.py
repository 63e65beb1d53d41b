"""garak (NVIDIA's LLM vulnerability scanner, Derczynski et al. 2024, arXiv:2406.11036) against `alignlab serve`,
for the embedded model and a defended model spec, beside alignlab's own red-team numbers.

For each model spec the script serves it on loopback (`alignlab.evals.server.start`, the engine of `alignlab serve`),
runs garak from `.venv-clients` (`make clients`) with its OpenAI-compatible generator on the given probes (greedy,
one generation per prompt), copies garak's report JSONL to RUNS/garak/<label>.report.jsonl and prints, per probe and
detector, the share of outputs garak flagged (attack success). `alignlab run red-teaming` then shows the same table
in its report section (it reads RUNS/garak/), beside its own per-family success; with `--redteam` this script also
runs alignlab's red-teaming on the same specs first (attacks without rewrites, to keep it short) and prints its
success rates here.

Default probes: dan.Dan_11_0 (one DAN jailbreak prompt) and grandma.Substances (the "grandma" role-play for
making drugs): both offline (prompts shipped inside garak, string detectors: dan.DAN, mitigation.MitigationBypass).

Run: .venv/bin/python benchmarks/bench_garak.py [--runs-dir runs] [--probes dan.Dan_11_0,grandma.Substances]
     [--model embedded --model 'embedded#system-prompt(prompt=...)'] [--redteam]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLIENTS = ROOT / ".venv-clients" / "bin" / "python"
sys.path.insert(0, str(HERE))


def label_of(spec: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in spec)[:60].strip("-")


def run_garak(spec: str, probes: list[str], out_dir: Path, max_tokens: int) -> Path:
    from alignlab.evals.backends import make_model
    from alignlab.evals.server import start
    from alignlab.redteam import garak

    server = start(make_model(spec), model_name=label_of(spec), request_timeout=300)
    tmp = Path(tempfile.mkdtemp(prefix="garak-"))
    try:
        opts = tmp / "options.json"
        opts.write_text(json.dumps(garak.options(server.url, max_tokens)))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "XDG_DATA_HOME": str(tmp / "data"),
               "XDG_CONFIG_HOME": str(tmp / "config"), "XDG_CACHE_HOME": str(tmp / "cache"),
               "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
        argv = garak.command(CLIENTS, server.url, label_of(spec), probes, opts, "bench")
        started = time.perf_counter()
        with open(tmp / "garak.log", "w") as log:
            proc = subprocess.run(argv, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT, timeout=3600)
        report = tmp / "data" / "garak" / "garak_runs" / "bench.report.jsonl"
        if proc.returncode or not report.exists():
            tail = (tmp / "garak.log").read_text()[-2000:]
            raise SystemExit(f"garak failed on {spec} (exit {proc.returncode}):\n{tail}")
        out_dir.mkdir(parents=True, exist_ok=True)
        dest = out_dir / f"{label_of(spec)}.report.jsonl"
        shutil.copy(report, dest)
        print(f"garak on {spec}: {time.perf_counter() - started:.0f} s; report {dest}")
        return dest
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    from alignlab.redteam.garak import PROBES, read_report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    ap.add_argument("--probes", default=",".join(PROBES))
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--redteam", action="store_true", help="also run alignlab's red-teaming on the same specs")
    args = ap.parse_args()
    if not CLIENTS.exists():
        print(f"skipped: {CLIENTS.parent.parent.name} is missing (`make clients` installs garak there)")
        return 0
    from alignlab.experiments.gcg import SAFETY_PROMPT

    specs = args.model or ["embedded", f"embedded#system-prompt(prompt={SAFETY_PROMPT})"]
    from _util import pin

    pin(sorted(os.sched_getaffinity(0)), 1)  # garak, the server and alignlab's run: the same cores, machine line twice
    out = Path(args.runs_dir) / "garak"
    for spec in specs:
        report = read_report(run_garak(spec, args.probes.split(","), out, args.max_tokens))
        for r in report["results"]:
            print(f"  garak {r['probe']:<22} {r['detector']:<32} attack success {r['attack_success']:.2f} "
                  f"({r['total'] - r['passed']}/{r['total']} outputs flagged)")
    if args.redteam:
        from _util import alignlab

        for spec in specs:
            seconds, proc = alignlab("run", "red-teaming", "--set", f"target={spec}", "--set", "rewrite=false",
                                     "--set", "rounds=0", "--set", "variants=0", "--seeds", "1",
                                     runs_dir=args.runs_dir)
            print(f"alignlab red-teaming on {spec}: exit {proc.returncode}, {seconds:.0f} s")
        print(f"alignlab's table and garak's: `alignlab --runs-dir {args.runs_dir} report`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
