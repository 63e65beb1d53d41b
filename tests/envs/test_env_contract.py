"""The environment contract, for every registered environment (Minigrid's habit: one test
suite parametrized over the registry): Gymnasium's checker passes, seeded runs reproduce,
`info` never carries the intended objective, the native vector env agrees with the single
env, and the tabular model (where there is one) is valid and agrees with reset() and step()."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import alignlab.envs  # noqa: F401  (registers the environments)
from alignlab.core.registry import make, names
from alignlab.envs.evaluation import intended_reward, intended_rewards

ENV_NAMES = names("env")
FORBIDDEN = ("intended", "performance", "hidden")
STEPS = 150


def gym_id(name: str) -> str:
    return f"alignlab/{name}"


def same(a: Any, b: Any) -> bool:
    """Structural equality for observations and infos (arrays, dicts, tuples, scalars)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    return a == b or (a != a and b != b)


def leaked_keys(info: Any, path: str = "") -> list[str]:
    found = []
    if isinstance(info, dict):
        for key, value in info.items():
            if any(word in str(key).lower() for word in FORBIDDEN):
                found.append(path + str(key))
            found += leaked_keys(value, path + str(key) + ".")
    return found


def rollout(env: gym.Env, seed: int, actions: list) -> list[tuple]:
    obs, info = env.reset(seed=seed)
    log = [(obs, info)]
    for a in actions:
        obs, r, terminated, truncated, info = env.step(a)
        log.append((obs, float(r), bool(terminated), bool(truncated), info))
        if terminated or truncated:
            obs, info = env.reset()
            log.append((obs, info))
    return log


def sample_actions(space: gym.Space, n: int, seed: int) -> list:
    space.seed(seed)
    return [space.sample() for _ in range(n)]


@pytest.mark.parametrize("name", ENV_NAMES)
def test_gymnasium_checker_passes(name):
    # Through gymnasium.make where registered, so the checker also sees the spec.
    env = gym.make(gym_id(name)).unwrapped if gym_id(name) in gym.registry else make("env", name)
    check_env(env, skip_render_check=False)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_seeded_runs_reproduce(name):
    env_a, env_b = make("env", name), make("env", name)
    actions = sample_actions(env_a.action_space, STEPS, seed=1)
    log_a, log_b = rollout(env_a, 123, actions), rollout(env_b, 123, actions)
    assert len(log_a) == len(log_b)
    for row_a, row_b in zip(log_a, log_b):
        assert same(row_a, row_b)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_info_never_carries_the_intended_objective(name):
    env = make("env", name)
    for row in rollout(env, 0, sample_actions(env.action_space, STEPS, seed=2)):
        assert leaked_keys(row[-1]) == []
    if gym_id(name) in gym.registry and gym.registry[gym_id(name)].vector_entry_point is not None:
        vec = gym.make_vec(gym_id(name), num_envs=2, vectorization_mode="vector_entry_point")
        _, info = vec.reset(seed=0)
        assert leaked_keys(info) == []
        for a in sample_actions(vec.action_space, 30, seed=3):
            assert leaked_keys(vec.step(a)[-1]) == []


def deterministic(model) -> bool:
    return model is not None and model.initial.max() == 1.0 and bool((model.prob.max(-1) == 1.0).all())


@pytest.mark.parametrize("name", ENV_NAMES)
def test_native_vector_env(name):
    if gym_id(name) not in gym.registry:
        pytest.skip(f"{name} is not registered with Gymnasium")
    if gym.registry[gym_id(name)].vector_entry_point is None:
        pytest.skip(f"{name} has no native vector env")
    n = 3
    vec = gym.make_vec(gym_id(name), num_envs=n, vectorization_mode="vector_entry_point")
    singles = [gym.make(gym_id(name)) for _ in range(n)]
    obs_v, _ = vec.reset(seed=0)
    assert vec.observation_space.contains(obs_v)
    model = singles[0].unwrapped.tabular()
    flat = sample_actions(singles[0].action_space, STEPS * n, seed=5)
    actions = [np.array(flat[t * n:(t + 1) * n]) for t in range(STEPS)]
    if not deterministic(model):
        # Stochastic dynamics (or no model): the copies cannot be matched draw for draw.
        for a in actions:
            obs_v, r, term, trunc, info = vec.step(a)
            assert vec.observation_space.contains(obs_v)
            assert r.shape == (n,) and np.issubdtype(r.dtype, np.floating) and np.isfinite(r).all()
            assert term.shape == trunc.shape == (n,) and term.dtype == trunc.dtype == bool
            hidden = intended_rewards(vec)
            assert hidden.shape == (n,) and np.isfinite(hidden).all()
        return
    # Deterministic: each copy must do exactly what a single env does with its actions.
    for i, env in enumerate(singles):
        assert same(obs_v[i], env.reset(seed=0)[0])
    done = np.zeros(n, dtype=bool)
    for a in actions:
        obs_v, r_v, term_v, trunc_v, _ = vec.step(a)
        hidden_v = intended_rewards(vec)
        for i, env in enumerate(singles):
            if done[i]:  # next-step autoreset: this step restarts the copy
                expected = (env.reset()[0], 0.0, 0.0, False, False)
            else:
                o, r, te, tr, _ = env.step(a[i])
                expected = (o, r, intended_reward(env), te, tr)
            got = (obs_v[i], r_v[i], hidden_v[i], term_v[i], trunc_v[i])
            assert same(got[0], expected[0])
            assert got[1:] == pytest.approx(expected[1:])
            done[i] = expected[3] or expected[4]


@pytest.mark.parametrize("name", ENV_NAMES)
def test_tabular_model(name):
    env = make("env", name)
    model = env.tabular()
    if model is None:
        pytest.skip(f"{name} has no tabular model (its card says why)")
    model.validate()
    assert model.terminal.shape == model.initial.shape == (model.n_states,)
    assert model.n_actions == env.action_space.n
    if model.obs is None:
        pytest.skip(f"{name}'s tabular model has no observation table")
    starts = np.flatnonzero(model.initial > 0)
    for seed in range(8):
        obs, _ = env.reset(seed=seed)
        assert any(same(model.obs[s], obs) for s in starts)
    assert all(env.observation_space.contains(model.obs[s]) for s in range(0, model.n_states, 97))
    if not deterministic(model):
        return
    # Deterministic: the model replays random play exactly as step() does.
    s = int(starts[0])
    env.reset(seed=0)
    for a in sample_actions(env.action_space, STEPS, seed=4):
        obs, r, terminated, truncated, _ = env.step(a)
        assert model.specified[s, a, 0] == pytest.approx(r)
        assert model.intended[s, a, 0] == pytest.approx(intended_reward(env))
        s = int(model.next_state[s, a, 0])
        assert same(model.obs[s], obs)
        assert bool(model.terminal[s]) == terminated
        if terminated or truncated:
            env.reset()
            s = int(starts[0])
