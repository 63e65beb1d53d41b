"""Every registered agent follows the contract: documented frozen config, a quick preset, one
pressure knob, train/act/act_batch/tabular_policy; the tabular agents solve a small MDP."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alignlab.agents.base import Agent
from alignlab.core.config import BaseConfig, field_docs
from alignlab.core.errors import ConfigError
from alignlab.core.registry import get, make, names
from alignlab.envs.rollout import exact_policy_value, rollout
from tests.agents import TableEnv, chain_model, random_model

AGENTS = ["value-iteration-v0", "q-learning-v0", "sarsa-v0", "safe-sarsa-v0", "linear-q-learning-v0", "ppo-v0"]
TABULAR = ["value-iteration-v0", "q-learning-v0", "sarsa-v0", "safe-sarsa-v0", "linear-q-learning-v0"]


def test_all_agents_are_registered():
    assert set(AGENTS) <= set(names("agent"))


@pytest.mark.parametrize("name", AGENTS)
def test_config_is_frozen_documented_with_one_pressure_knob(name):
    cls = get("agent", name)
    assert issubclass(cls, Agent)
    config_cls = cls.config_cls
    assert issubclass(config_cls, BaseConfig) and config_cls.__dataclass_params__.frozen
    docs = field_docs(config_cls)
    fields = [f.name for f in dataclasses.fields(config_cls)]
    assert fields and all(docs.get(f) for f in fields), f"undocumented fields: {set(fields) - set(docs)}"
    assert cls.pressure_key in fields
    assert "pressure" in docs[cls.pressure_key].lower()
    assert isinstance(config_cls.quick(), config_cls)
    agent = make("agent", name)
    assert agent.config == config_cls()
    strong = cls.with_pressure(7)
    assert strong.pressure == 7 and getattr(strong.config, cls.pressure_key) == 7
    with pytest.raises(RuntimeError, match="train"):
        agent.act(np.zeros(1))


@pytest.mark.parametrize("name", AGENTS)
def test_config_validation(name):
    cls = get("agent", name)
    with pytest.raises(ConfigError):
        cls.with_pressure(0)


@pytest.mark.parametrize("name", TABULAR)
def test_tabular_agents_solve_a_chain(name):
    model = chain_model(n=6, horizon=20)
    agent = make("agent", name, get("agent", name).config_cls.quick()).train(TableEnv(model), seed=0)
    assert exact_policy_value(model, agent.tabular_policy(model)) == {"specified": 5.0, "intended": 5.0}
    result = rollout(agent, TableEnv(model), 3, seed=0)
    np.testing.assert_array_equal(result.specified, 5.0)


@pytest.mark.parametrize("name", ["q-learning-v0", "sarsa-v0", "safe-sarsa-v0"])
def test_td_agents_act_batch_matches_act_and_training_is_seeded(name):
    model = random_model(np.random.default_rng(2), S=8, A=3, K=2, horizon=10)
    cls = get("agent", name)
    a = cls(episodes=200).train(TableEnv(model), seed=4)
    b = cls(episodes=200).train(TableEnv(model), seed=4)
    assert a.q.keys() == b.q.keys() and all(a.q[k] == b.q[k] for k in a.q)
    np.testing.assert_array_equal(a.episode_returns, b.episode_returns)
    batch = a.act_batch(model.obs, np.zeros(8, dtype=int))
    assert batch.tolist() == [a.act(o) for o in model.obs]
    np.testing.assert_array_equal(a.tabular_policy(model), batch)


def test_epsilon_schedule_decays_linearly_then_holds():
    agent = get("agent", "q-learning-v0")(episodes=100, epsilon_start=1.0, epsilon_end=0.1, epsilon_decay=0.5)
    assert agent.epsilon(0) == 1.0
    assert agent.epsilon(25) == pytest.approx(0.55)
    assert agent.epsilon(50) == pytest.approx(0.1) and agent.epsilon(99) == pytest.approx(0.1)


def test_planner_reads_only_the_specified_reward():
    """Swapping the intended reward for garbage changes nothing the planner does."""
    model = random_model(np.random.default_rng(9), S=7, A=3, K=2, horizon=6)
    first = make("agent", "value-iteration-v0").train(TableEnv(model), seed=0).tabular_policy(model)
    model2 = dataclasses.replace(model, intended=np.random.default_rng(1).normal(size=model.intended.shape) * 1e6)
    second = make("agent", "value-iteration-v0").train(TableEnv(model2), seed=0).tabular_policy(model2)
    np.testing.assert_array_equal(first, second)
