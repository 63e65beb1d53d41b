"""Outside anchors for the environment benchmark: gymnax FourRooms (JAX, 1,024 copies) and
MiniGrid Empty-8x8 (one env). Imports nothing from alignlab, so it also runs in the
anchors venv: `python anchors.py gymnax|minigrid SECONDS` prints steps per second."""

from __future__ import annotations

import sys
import time


def gymnax_anchor(seconds: float) -> float | None:
    try:
        import gymnax  # noqa: F401
        import jax
    except ImportError:
        return None
    env, params = gymnax.make("FourRooms-misc")
    n = 1024
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    actions = jax.random.randint(jax.random.PRNGKey(1), (n,), 0, 4)
    obs, state, *_ = step(keys, state, actions, params)
    jax.block_until_ready(obs)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        obs, state, *_ = step(keys, state, actions, params)
        steps += 1
    jax.block_until_ready(obs)
    return steps * n / (time.perf_counter() - started)


def minigrid_anchor(seconds: float) -> float | None:
    try:
        import gymnasium as gym
        import minigrid  # noqa: F401
    except ImportError:
        return None
    env = gym.make("MiniGrid-Empty-8x8-v0")
    env.reset(seed=0)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
        steps += 1
    return steps / (time.perf_counter() - started)


if __name__ == "__main__":
    which, secs = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    rate = {"gymnax": gymnax_anchor, "minigrid": minigrid_anchor}[which](secs)
    if rate is None:
        sys.exit(f"{which} is not installed here")
    print(rate)
