"""Every registered agent follows the contract: documented frozen config, a quick preset, one
pressure knob, train/act/act_batch/tabular_policy, and it learns a small chain MDP.

The tests run over `registry.names("agent")`, so an agent joins them by registering; what
differs per agent comes from its class (its config's presets, `pressure_key`, and
`smoke_config()`, the budget of the chain run), never from a table keyed by name."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from alignlab.agents.base import Agent, discrete_actions
from alignlab.agents.q_learning import TabularTDAgent
from alignlab.core import registry
from alignlab.core.config import BaseConfig, field_docs
from alignlab.core.errors import ConfigError
from alignlab.core.registry import get, make, names
from alignlab.envs.rollout import exact_policy_value, rollout
from tests.agents import TableEnv, chain_model, random_model


def registered_agents() -> list[str]:
    """The agents the contract tests run on: every registered one."""
    return names("agent")


def td_agents() -> list[str]:
    """The registered tabular temporal-difference learners (Q-table in `q`)."""
    return [n for n in registered_agents() if issubclass(get("agent", n), TabularTDAgent)]


def check_config_contract(name: str) -> None:
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
    assert isinstance(cls.smoke_config(), config_cls)
    agent = make("agent", name)
    assert agent.config == config_cls()
    strong = cls.with_pressure(7)
    assert strong.pressure == 7 and getattr(strong.config, cls.pressure_key) == 7
    with pytest.raises(RuntimeError, match="train"):
        agent.act(np.zeros(1))


def check_config_validation(name: str) -> None:
    with pytest.raises(ConfigError):
        get("agent", name).with_pressure(0)


def check_solves_a_chain(name: str) -> None:
    """Trained with its `smoke_config()` (default: the quick preset), the agent walks the chain."""
    model = chain_model(n=6, horizon=20)
    cls = get("agent", name)
    agent = make("agent", name, cls.smoke_config()).train(TableEnv(model), seed=0)
    assert exact_policy_value(model, agent.tabular_policy(model)) == {"specified": 5.0, "intended": 5.0}
    result = rollout(agent, TableEnv(model), 3, seed=0)
    np.testing.assert_array_equal(result.specified, 5.0)


@pytest.mark.parametrize("name", registered_agents())
def test_config_is_frozen_documented_with_one_pressure_knob(name):
    check_config_contract(name)


@pytest.mark.parametrize("name", registered_agents())
def test_config_validation(name):
    check_config_validation(name)


@pytest.mark.parametrize("name", registered_agents())
def test_agents_solve_a_chain(name):
    check_solves_a_chain(name)


@pytest.mark.parametrize("name", td_agents())
def test_td_agents_act_batch_matches_act_and_training_is_seeded(name):
    model = random_model(np.random.default_rng(2), S=8, A=3, K=2, horizon=10)
    cls = get("agent", name)
    a = cls.with_pressure(200).train(TableEnv(model), seed=4)
    b = cls.with_pressure(200).train(TableEnv(model), seed=4)
    assert a.q.keys() == b.q.keys() and all(a.q[k] == b.q[k] for k in a.q)
    np.testing.assert_array_equal(a.episode_returns, b.episode_returns)
    batch = a.act_batch(model.obs, np.zeros(8, dtype=int))
    assert batch.tolist() == [a.act(o) for o in model.obs]
    np.testing.assert_array_equal(a.tabular_policy(model), batch)


@dataclasses.dataclass(frozen=True)
class _WalkRightConfig(BaseConfig):
    steps: int = 1
    """Training steps (the optimization-pressure knob; unused: the agent always walks right)."""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1 (got {self.steps})")


class _WalkRight(Agent):
    """Always action 1 (right on the chain): the smallest agent that honours the contract."""

    config_cls = _WalkRightConfig
    pressure_key = "steps"

    def train(self, env: Any, seed: int) -> "_WalkRight":
        discrete_actions(env)
        self.trained = True
        return self

    def act(self, obs: Any, t: int | None = None) -> int:
        self._check_trained()
        return 1


@pytest.fixture
def walk_right_agent():
    """`_WalkRight` registered under a test-only name for one test, then removed."""
    name = "test-contract-walk-right-v0"
    registry.register("agent", name)(_WalkRight)
    try:
        yield name
    finally:
        registry._REGISTRY["agent"].pop(name, None)


def test_a_registered_agent_joins_the_contract_tests(walk_right_agent):
    """Registering is all it takes: no list in this file names the new agent."""
    assert walk_right_agent in registered_agents() and walk_right_agent not in td_agents()
    check_config_contract(walk_right_agent)
    check_config_validation(walk_right_agent)
    check_solves_a_chain(walk_right_agent)


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
