"""Our PGD (alignlab.robustness.attacks, Madry et al. 2018, arXiv:1706.06083) against torchattacks 3.5.1's PGD and
PGDL2 (the anchor) on the same trained models and the same inputs, side by side in one run, one core, one thread.

Arms: L-infinity (eps 0.1) and L2 (eps 0.5), 20 steps of 2.5 eps / 20, one random start, on the 539 test digits, for
the standard two-layer MLP and the small CNN (30 epochs of standard training each). Figures: seconds per attack of
the whole test set (median of `--rounds`), its ratio to torchattacks', and the robust accuracy each attack leaves,
with their difference. Targets: time at most 1.25x torchattacks'; robust accuracy within the experiment's tolerance
(0.03) of torchattacks'. Also timed: `alignlab run adversarial-examples --quick` (target 60 s, on 2 workers).

Run: .venv/bin/python benchmarks/bench_adversarial.py [--rounds 5] [--no-run]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from _util import alignlab, figure, pin  # noqa: E402

TIME_TARGET = 1.25


def timed(fn, rounds: int) -> tuple[float, object]:
    fn()  # warm-up
    seconds, out = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-run", action="store_true", help="skip timing the experiment's quick preset")
    args = parser.parse_args()
    import torch

    pin(sorted(os.sched_getaffinity(0))[:1], 1)  # both PGD arms: one core, one thread; machine line before and after
    from alignlab.experiments.adversarial_examples import AdversarialExamplesConfig
    from alignlab.robustness import data, evaluate
    from alignlab.robustness.attacks import pgd
    from alignlab.robustness.training import Recipe, train
    from alignlab.vision import digits

    print(f"torch {torch.__version__}; anchor torchattacks {evaluate.library_version()}", flush=True)
    tolerance = AdversarialExamplesConfig().tolerance
    x_train, y_train, x_test, y_test = data.load("digits").tensors()
    ok = True
    for arch, make in (("mlp", lambda: digits.mlp(seed=0)), ("cnn", lambda: digits.cnn(seed=0))):
        model = train(make(), x_train, y_train, Recipe(epochs=30), seed=0)
        for norm, eps in (("linf", 0.1), ("l2", 0.5)):
            def ours():
                return pgd(model, x_test, y_test, norm=norm, eps=eps, steps=20,
                           generator=torch.Generator().manual_seed(0))

            def theirs():
                return evaluate.library_pgd(model, x_test, y_test, norm=norm, eps=eps, steps=20, seed=0)

            t_ours, adv_ours = timed(ours, args.rounds)
            t_lib, adv_lib = timed(theirs, args.rounds)
            with torch.no_grad():
                acc_ours = float((model(adv_ours).argmax(-1) == y_test).float().mean())
                acc_lib = float((model(adv_lib).argmax(-1) == y_test).float().mean())
            fast = t_ours <= TIME_TARGET * t_lib
            agree = abs(acc_ours - acc_lib) <= tolerance
            ok &= fast and agree
            print(f"{arch} PGD {norm:<4} eps={eps:<4g} 20 steps, 539 inputs: ours {1e3 * t_ours:8.1f} ms, torchattacks "
                  f"{1e3 * t_lib:8.1f} ms, ratio {t_ours / t_lib:.3f} (target <= {TIME_TARGET}) "
                  f"[{'ok' if fast else 'MISSED'}]; robust accuracy ours {acc_ours:.3f}, torchattacks {acc_lib:.3f}, "
                  f"|difference| {abs(acc_ours - acc_lib):.3f} (tolerance {tolerance:g}) "
                  f"[{'ok' if agree else 'MISSED'}]",
                  flush=True)
    if not args.no_run:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))  # the run uses its 2 workers
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds, proc = alignlab("run", "adversarial-examples", "--quick")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:])
            return 1
        ok &= figure("run adversarial-examples --quick (wall)", seconds, "s", "target", 60.0, lower_is_better=True)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        print(f"  CPU seconds of that run, every process: {cpu:.1f} (a lower bound on its wall time on 2 idle cores: "
              f"{cpu / 2:.1f} s); {proc.stdout.strip().splitlines()[-2] if proc.stdout.strip() else ''}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
