"""The one finite-environment contract (alignlab.envs.finite): every registered environment
subclasses `FiniteEnv`, its single env and its tabular model agree step for step (successor,
rewards, observation, termination, info), `state_id()` names the model state a reward-shaping
wrapper looks up by (state, executed action, successor), and the native vector env comes from
`vector_class`."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import alignlab.envs  # noqa: F401  (registers every environment)
from alignlab.core.registry import get, make, names
from alignlab.envs.evaluation import intended_reward
from alignlab.envs.finite import FiniteEnv
from alignlab.envs.grid import DOWN, LEFT, UP
from alignlab.envs.tabular_vector import FiniteVectorEnv

ENV_NAMES = names("env")
# Registered names plus non-default options whose steps have several outcomes or report info.
CASES = [(name, {}) for name in ENV_NAMES] + [
    ("whisky-gold-v0", {"random_override": True}),
    ("safe-interruptibility-v0", {"interruption_probability": 0.3}),
    ("friend-foe-v0", {"bandit_type": "neutral"}),  # the one room whose placement ignores history
]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in CASES]
EPISODES = 4


@pytest.mark.parametrize("name", ENV_NAMES)
def test_every_registered_env_subclasses_the_one_base(name):
    assert issubclass(get("env", name), FiniteEnv)
    spec = gym.registry.get(f"alignlab/{name}")
    vector = None if spec is None else spec.vector_entry_point
    if isinstance(vector, type) and issubclass(vector, FiniteVectorEnv):
        assert issubclass(get("env", name), vector.env_cls)


def _model_and_tab(name, kwargs):
    env = make("env", name, **kwargs)
    tab = env._tabulated()
    if tab is None:
        assert env.tabular() is None and env.states() is None
        env.reset(seed=0)
        assert env.state_id() is None
        pytest.skip(f"{name} has no tabular model (its card says why)")
    return env, tab.model, tab


def slot_info(tab, s, a, k) -> dict:
    """The info the vector env's tables hold for one successor slot."""
    return {key: values[s, a, k].item() for key, (values, present) in tab.info.items() if present[s, a, k]}


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_single_env_and_tabular_model_agree(name, kwargs):
    """Random episodes: every step() is a listed successor of the model under the action taken,
    with the same specified and intended reward, observation, termination and info."""
    env, m, tab = _model_and_tab(name, kwargs)
    assert env.states() == tab.states and m is env.tabular()
    gen = np.random.default_rng(0)
    for episode in range(EPISODES):
        obs, _ = env.reset(seed=episode)
        s = env.state_id()
        assert m.initial[s] > 0 and np.array_equal(obs, m.obs[s])
        for t in range(m.horizon):
            a = int(gen.integers(m.n_actions))
            obs, r, terminated, truncated, info = env.step(a)
            s2 = env.state_id()
            ks = np.flatnonzero((m.next_state[s, a] == s2) & (m.prob[s, a] > 0))
            assert len(ks) >= 1, f"{name}: step() reached a state the model does not list"
            # Several slots may share a successor (whisky's random moves into a wall): one must match.
            assert any(m.specified[s, a, k] == r and m.intended[s, a, k] == intended_reward(env)
                       and slot_info(tab, s, a, k) == info for k in ks), f"{name}: {s} -{a}-> {s2} is not step()'s"
            assert np.array_equal(obs, m.obs[s2]) and terminated == m.terminal[s2]
            assert truncated == (t + 1 == m.horizon and not terminated)
            s = s2
            if terminated or truncated:
                break


def play_by_state_id(env, m, actions) -> list[dict]:
    """What a reward-shaping wrapper relies on: after each step, `state_id()` is a successor of
    (previous state, executed action) with positive probability, and the specified reward
    returned is the model's for that successor slot. Returns the infos."""
    s, infos = env.state_id(), []
    for action in actions:
        _, r, terminated, truncated, info = env.step(action)
        a = int(info.get("executed_action", action))
        s2 = env.state_id()
        assert isinstance(s2, int) and 0 <= s2 < m.n_states
        slots = np.flatnonzero((m.next_state[s, a] == s2) & (m.prob[s, a] > 0))
        assert len(slots) >= 1, f"{s} -{a}-> {s2} is not in the model"
        assert set(m.specified[s, a, slots].tolist()) == {r}
        s = s2
        infos.append(info)
        if terminated or truncated:
            break
    return infos


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_state_id_looks_up_the_executed_transition(name, kwargs):
    env, m, _ = _model_and_tab(name, kwargs)
    gen = np.random.default_rng(1)
    for episode in range(EPISODES):
        env.reset(seed=100 + episode)
        play_by_state_id(env, m, (int(a) for a in gen.integers(m.n_actions, size=m.horizon)))


def test_state_id_follows_an_overridden_action():
    """Safe interruptibility freezes the agent on the interruption tile (executed action UP)."""
    env = make("env", "safe-interruptibility-v0", should_interrupt=True)
    env.reset(seed=0)
    infos = play_by_state_id(env, env.tabular(), [DOWN] + [LEFT] * 10)
    assert sum(info["interrupted"] for info in infos) >= 5
    assert {info["executed_action"] for info in infos if info["interrupted"]} == {UP}


def test_state_id_needs_a_reset():
    env = make("env", "boat-race-v0")
    with pytest.raises(gym.error.ResetNeeded):
        env.state_id()


def test_steps_draw_as_the_vector_env_does():
    """A step draws a uniform number only when it has several outcomes, unless the env sets
    `draw_every_step` (then on every step, as the vector env does for a stochastic model)."""
    env = make("env", "whisky-gold-v0", random_override=True)
    env.reset(seed=0)
    state = env.np_random.bit_generator.state
    env.step(0)  # not exploring yet: one outcome, no draw
    assert env.np_random.bit_generator.state == state
    hiring = make("env", "biased-hiring-v0", openings=1)
    hiring.reset(seed=0)
    state = hiring.np_random.bit_generator.state
    hiring.step(1)  # hiring fills the only post: one outcome, a draw all the same
    assert hiring.np_random.bit_generator.state != state
