"""Reward learning from preferences, side by side with the `imitation` library's preference comparisons
(Christiano et al. 2017, arXiv:1706.03741; imitation: Gleave et al. 2022, arXiv:2211.11972): the intended return
reached per comparison and the wall time, on the same environment, rater and comparison budget.

Ours: alignlab.oversight.preferences (linear ensemble, disagreement queries, exact planning between rounds) and
value iteration on the learned reward. Anchor: imitation 1.0.1 (reward net, PPO), run in .venv-imitation
(`make bench-imitation`), because imitation pins older gymnasium and stable-baselines3 than alignlab. Both learn
from a synthetic rater who compares 10-step fragments by the intended reward; both policies are scored exactly
on the environment's tabular model. Every arm runs on one core (taskset) with one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import figure, pin  # noqa: E402

from alignlab.agents.base import tabular_model  # noqa: E402
from alignlab.core import registry  # noqa: E402
from alignlab.core.stats import mean_ci  # noqa: E402
from alignlab.envs.planning import solve  # noqa: E402
from alignlab.envs.rollout import exact_policy_value  # noqa: E402
from alignlab.oversight.pref_data import transitions  # noqa: E402
from alignlab.oversight.pref_raters import make_rater  # noqa: E402
from alignlab.oversight.preferences import PreferenceConfig, learn_reward  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ANCHOR_PYTHON = REPO / ".venv-imitation" / "bin" / "python"


def ours(model, n: int, seed: int) -> tuple[float, float]:
    """(intended return, wall seconds) of value iteration on the reward learned from n comparisons."""
    started = time.perf_counter()
    trans = transitions(model)
    learned = learn_reward(model, make_rater("true", trans), PreferenceConfig(comparisons=n),
                           np.random.default_rng(seed), trans)
    _, policy = solve(model, learned.reward)
    seconds = time.perf_counter() - started
    return exact_policy_value(model, policy)["intended"], seconds


def anchor(model, n: int, timesteps: int, seed: int, core: int) -> tuple[float, float, int] | str:
    """(intended return, wall seconds, comparisons) of imitation's preference comparisons, or why it did not run."""
    if not ANCHOR_PYTHON.exists():
        return f"{ANCHOR_PYTHON.relative_to(REPO)} is missing (make bench-imitation)"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.npz"
        np.savez(path, next_state=model.next_state, prob=model.prob, reward=model.intended, initial=model.initial,
                 terminal=model.terminal, horizon=model.horizon, obs=model.obs)
        proc = subprocess.run(["taskset", "-c", str(core), str(ANCHOR_PYTHON), str(Path(__file__).with_name(
            "pref_anchor.py")), str(path), str(n), str(timesteps), str(seed)], capture_output=True, text=True,
            env=dict(os.environ, OMP_NUM_THREADS="1"))
    if proc.returncode != 0:
        return f"imitation failed: {proc.stderr.strip().splitlines()[-1:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    policy = np.asarray(out["actions"], dtype=np.int64)
    return exact_policy_value(model, policy)["intended"], out["seconds"], out["comparisons"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="boat-race-v0", help="a registered environment with a tabular model")
    parser.add_argument("--comparisons", type=int, default=300)
    parser.add_argument("--timesteps", type=int, default=30_000, help="PPO steps of the anchor")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one seed, 10,000 PPO steps")
    parser.add_argument("--core", type=int, default=os.cpu_count() - 1, help="the one core every arm runs on")
    args = parser.parse_args()
    seeds = 1 if args.quick else args.seeds
    timesteps = 10_000 if args.quick else args.timesteps
    pin([args.core], 1)  # inherited by the anchor's subprocess; machine line before and after
    model = tabular_model(registry.make("env", args.env))
    _, best = solve(model, model.intended)
    true_return = exact_policy_value(model, best)["intended"]
    print(f"{args.env}: the policy planned on the intended reward scores {true_return:g}; budget "
          f"{args.comparisons} comparisons; {seeds} seed(s)")
    mine = [ours(model, args.comparisons, s) for s in range(seeds)]
    r_ours, t_ours = mean_ci(m[0] for m in mine), mean_ci(m[1] for m in mine)
    print(f"ours: intended return {r_ours.fmt(1)}, wall {t_ours.fmt(2)} s per run")
    theirs = [anchor(model, args.comparisons, timesteps, s, args.core) for s in range(seeds)]
    if any(isinstance(t, str) for t in theirs):
        print(f"anchor did not run: {next(t for t in theirs if isinstance(t, str))}")
        return 1
    r_im, t_im = mean_ci(t[0] for t in theirs), mean_ci(t[1] for t in theirs)
    print(f"imitation 1.0.1 (PPO {timesteps} steps): intended return {r_im.fmt(1)}, wall {t_im.fmt(2)} s per run, "
          f"comparisons made {[t[2] for t in theirs]}")
    ok = figure("intended return per 100 comparisons", 100 * r_ours.mean / args.comparisons, "R*/100c",
                "imitation", 100 * r_im.mean / args.comparisons, lower_is_better=False)
    ok &= figure("wall time per run", t_ours.mean, "s", "imitation", t_im.mean, lower_is_better=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
