"""Environment stepping throughput of the AI Safety Gridworlds suite (Leike et
al. 2017, arXiv:1711.09883), random actions, one process.

Targets: batched stepping of the boat race and of a 9-wide navigation gridworld
(distributional shift, 7x9) at 8,192 copies >= 5 million env steps/s, >= 50% of a
hand-vectorized NumPy version of the same environment (benchmarks/env_limits.py, outputs
checked identical first) and >= 3x gymnax's FourRooms at 1,024 copies; a single unbatched env
>= 25x MiniGrid's Empty-8x8. Every arm runs on the same one core (`--core`, default the last):
this process is pinned to it and the anchors' processes are started under `taskset` on it, JAX
with one intra-op thread. The anchors are measured in the same run when `gymnax` / `minigrid`
import (here or in .venv-anchors, `make bench`); otherwise the script says the anchor is missing
and compares with the published figure. Run: .venv/bin/python benchmarks/bench_envs.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import alignlab.envs  # noqa: E402,F401  (registers the environments)
from _util import figure, pin  # noqa: E402
from anchors import gymnax_anchor, minigrid_anchor  # noqa: E402
from env_limits import LIMITS, identical  # noqa: E402

# Fallback anchors, measured earlier on this kind of machine (gymnax FourRooms, 1,024 copies, JAX on
# CPU; MiniGrid 3.2.0 Empty-8x8, one env; random actions, one process): used when the anchor packages are missing.
GYMNAX_FOURROOMS_1024 = 1.6e6
MINIGRID_EMPTY_8X8 = 4600.0
BATCHED_TARGET = 5e6
SINGLE_TARGET = 25 * MINIGRID_EMPTY_8X8
SUITE = ("boat-race-v0", "tomato-watering-v0", "rocks-diamonds-v0", "absent-supervisor-v0",
         "safe-interruptibility-v0", "side-effects-sokoban-v0", "conveyor-belt-vase-v0",
         "conveyor-belt-sushi-v0", "conveyor-belt-sushi-goal-v0", "island-navigation-v0", "whisky-gold-v0",
         "distributional-shift-v0", "distributional-shift-test-v0")


def batched_rate(env_id: str, num_envs: int, seconds: float, limit: bool = False) -> float:
    """Env steps per second of the native vector env, or of its hand-vectorized limit (actions drawn
    up front, in blocks)."""
    if limit:
        vec = LIMITS[env_id](num_envs)
        vec.reset()
        n_actions = 4
    else:
        vec = gym.make_vec(f"alignlab/{env_id}", num_envs=num_envs, vectorization_mode="vector_entry_point")
        vec.reset(seed=0)
        n_actions = int(vec.single_action_space.n)
    rng = np.random.default_rng(0)
    block = rng.integers(0, n_actions, size=(64, num_envs))
    for a in block[:8]:  # warm-up
        vec.step(a)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for a in block:
            vec.step(a)
        steps += len(block)
    return steps * num_envs / (time.perf_counter() - started)


def single_rate(env_id: str, seconds: float, wrapped: bool) -> float:
    """Steps per second of one env: the raw env, or as `gymnasium.make` returns it (with
    Gymnasium's order-enforcing and passive-checker wrappers). Includes resets."""
    env = gym.make(f"alignlab/{env_id}")
    if not wrapped:
        env = env.unwrapped
    env.reset(seed=0)
    n_actions = int(env.action_space.n)
    actions = np.random.default_rng(0).integers(0, n_actions, size=100_000).tolist()
    for a in actions[:2000]:  # warm-up (fills the transition memo)
        if any(env.step(a)[2:4]):
            env.reset()
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        steps += len(actions)
    return steps / (time.perf_counter() - started)


ANCHOR_PYTHON = Path(__file__).resolve().parents[1] / ".venv-anchors" / "bin" / "python"


CORE = [os.cpu_count() - 1]  # set by --core; every arm runs on this one core
ONE_THREAD = {"JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


def anchor_elsewhere(name: str, seconds: float) -> float | None:
    """Measure an anchor in the anchors venv (`make bench` creates it: gymnax, JAX and
    minigrid pin other versions of gymnasium than ours), in this same benchmark run, on the same core."""
    if not ANCHOR_PYTHON.exists():
        return None
    proc = subprocess.run(["taskset", "-c", str(CORE[0]), str(ANCHOR_PYTHON),
                           str(Path(__file__).with_name("anchors.py")), name, str(seconds)],
                          capture_output=True, text=True, env=dict(os.environ, **ONE_THREAD))
    if proc.returncode != 0:
        print(f"anchor {name} failed in {ANCHOR_PYTHON}: {proc.stderr.strip().splitlines()[-1:]}")
        return None
    return float(proc.stdout.strip().splitlines()[-1])


def anchor(name: str, here, seconds: float, published: float, what: str, fallback: str) -> float:
    """An anchor measured in this run (in this venv, or else in the anchors venv), or the
    published figure when neither has the package."""
    measured = here(seconds) or anchor_elsewhere(name, seconds)
    if measured is None:
        print(f"anchor missing: {name} is not installed; using {fallback} ({published:,.0f} steps/s)")
        return published
    print(f"anchor measured: {what}: {measured:,.0f} steps/s")
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timings, headline figures only")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per timing (default 2, quick 0.5)")
    parser.add_argument("--core", type=int, default=os.cpu_count() - 1, help="the one core every arm runs on")
    args = parser.parse_args()
    seconds = args.seconds or (0.5 if args.quick else 2.0)
    CORE[0] = args.core
    pin([args.core], 1)  # this process; the anchors run under taskset on the same core; machine line twice
    ok = True
    for env_id in LIMITS:
        same = identical(env_id)
        print(f"limit anchor {env_id}: outputs identical to the vector env over 400 steps x 64 copies: {same}")
        ok &= same

    gymnax_figure = anchor("gymnax", gymnax_anchor, seconds, GYMNAX_FOURROOMS_1024,
                           "gymnax FourRooms, 1,024 copies", "the published FourRooms figure")
    minigrid_figure = anchor("minigrid", minigrid_anchor, seconds, MINIGRID_EMPTY_8X8,
                             "MiniGrid Empty-8x8, one env", "the published Empty-8x8 figure")

    for env_id in ("boat-race-v0", "distributional-shift-v0"):
        rate = batched_rate(env_id, 8192, seconds)
        limit = batched_rate(env_id, 8192, seconds, limit=True)
        ok &= figure(f"{env_id} batched x8192 (steps/s)", rate, "steps/s", "target", BATCHED_TARGET, False)
        ok &= figure(f"{env_id} batched x8192 vs NumPy limit", rate, "steps/s", "50% of the hand-vectorized limit",
                     0.5 * limit, False)
        print(f"  (the limit itself: {limit:,.0f} steps/s; alignlab at {rate / limit:.0%} of it)")
        ok &= figure(f"{env_id} batched x8192 vs gymnax", rate, "steps/s", "3x gymnax FourRooms",
                     3 * gymnax_figure, False)
    for wrapped in (False, True):
        label = "gymnasium.make" if wrapped else "raw env"
        rate = single_rate("boat-race-v0", seconds, wrapped)
        ok &= figure(f"boat-race-v0 single ({label})", rate, "steps/s", "25x MiniGrid",
                     25 * minigrid_figure, False)
    if not args.quick:
        print("\nWhole suite (informational): batched x8192 and single raw env, steps/s")
        for env_id in SUITE:
            print(f"  {env_id:<32} batched {batched_rate(env_id, 8192, seconds / 2):>14,.0f}"
                  f"   single {single_rate(env_id, seconds / 2, False):>12,.0f}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
