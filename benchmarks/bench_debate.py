"""Times the scalable-oversight experiments' quick presets and the debate game's solvers.

Targets: `alignlab run debate --quick`, `run amplification --quick`, `run weak-to-strong --quick` each under 40 s
(2 workers), together under 120 s. Solvers, on one core: the subset dynamic programme against minimax over move
sequences (the reference it must equal, Irving et al. 2018 play over sequences) on a 12-pixel, 4-reveal game; and
seconds per image of exact minimax at k=4 and k=6 and of the pooled search at k=6.
Run: .venv/bin/python benchmarks/bench_debate.py [--solvers-only]
"""

from __future__ import annotations

import os
import sys
import time
from math import comb

from _util import alignlab, figure, pin


def solvers() -> bool:
    import numpy as np
    import torch

    from alignlab.oversight import debate as D
    from alignlab.oversight.debate_game import brute_minimax, colex_subsets, minimax
    from alignlab.vision import digits

    torch.set_num_threads(1)
    n, k = 12, 4
    leaf = np.random.default_rng(0).normal(size=(comb(n, k), 1)).astype(np.float32)
    index = {frozenset(r.tolist()): i for i, r in enumerate(colex_subsets(n, k))}
    started = time.perf_counter()
    ref = brute_minimax(lambda s: float(leaf[index[s], 0]), tuple(range(n)), k, "honest-first")
    brute = time.perf_counter() - started
    started = time.perf_counter()
    got = minimax(leaf, n, k, "honest-first")[0]
    dp = time.perf_counter() - started
    ok = abs(got - ref) < 1e-6
    ok &= figure("subset DP, n=12 k=4 (s)", dp, "s", "sequence minimax", brute, lower_is_better=True)
    split = digits.load()
    for k, method, images in ((4, "exact", 10), (6, "search", 10), (6, "exact", 2)):
        judge = D.train_judge(split.x_train, split.y_train, D.JudgeSettings(k=k, masks_per_image=8, epochs=2), 0)
        started = time.perf_counter()
        for i in range(images):
            D.debate_image(judge, split.x_test[i], int(split.y_test[i]), k, method)
        per = (time.perf_counter() - started) / images
        print(f"debate_image k={k} {method:<6} {per:8.3f} s per image (9 lies, both orders, oracle)", flush=True)
    return ok


def main() -> int:
    pin(sorted(os.sched_getaffinity(0)), 1)  # both solver arms one thread; the presets' 2 workers use both cores
    ok = solvers()
    if "--solvers-only" in sys.argv:
        return 0 if ok else 1
    total = 0.0
    for name in ("debate", "amplification", "weak-to-strong"):
        seconds, proc = alignlab("run", name, "--quick", "--workers", "2")
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:])
            return 1
        total += seconds
        ok &= figure(f"run {name} --quick (wall)", seconds, "s", "target", 40.0, lower_is_better=True)
    ok &= figure("the three quick presets (wall)", total, "s", "target", 120.0, lower_is_better=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
