"""The agent contract: an optimizer trained on a Gymnasium environment's specified reward
only, acting greedily afterwards (Gymnasium's Env API; the two-objective rule of docs/architecture.md).

Every agent is registered with `@register("agent", "<name>-v0")`, configured by a frozen
`BaseConfig` dataclass whose fields carry docstrings, and names ONE field as its
optimization-pressure knob in `pressure_key` (planning horizon, training episodes, total
timesteps), so an experiment can sweep it to draw a Goodhart curve.

Agents see what an agent would see: observations, the specified reward and `info`. The
exact planner also reads the environment's tabular model, but only its transition
structure, observation table and specified reward. Nothing here reads the intended
objective (tests/test_no_peeking.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from alignlab.core.config import BaseConfig
from alignlab.envs.base import TabularModel
from alignlab.envs.planning import BeliefPolicy


class Agent:
    """Base class. Subclasses set `config_cls` and `pressure_key` and implement `train`
    and `act`.

    - `train(env, seed) -> self`: optimise the specified reward on a single Gymnasium env.
    - `act(obs, t=None) -> int`: the greedy action for observation `obs` at step `t` of the
      episode. Memoryless agents ignore `t`. An agent whose action depends on the
      episode's history (`recurrent = True`) starts a new episode when `t == 0`, or, if
      `t` is None, after `reset()`, and counts steps itself.
    - `act_batch(obs, t) -> actions`: the same for a batch of copies (one row each). A
      row with t < 0 is one whose action will be ignored (a vector env resetting it);
      the agent may return any action there.
    - `tabular_policy(model)`: the agent's greedy policy on a tabular model, in a form
      `alignlab.envs.rollout.exact_policy_value` evaluates exactly.
    """

    config_cls: ClassVar[type[BaseConfig]]
    pressure_key: ClassVar[str]
    """The config field that is this agent's optimization-pressure knob."""
    recurrent: bool = False
    """Whether the action depends on the episode's history, not only the observation."""

    def __init__(self, config: BaseConfig | None = None, **overrides: Any):
        config = self.config_cls() if config is None else config
        if not isinstance(config, self.config_cls):
            raise TypeError(f"{type(self).__name__} takes a {self.config_cls.__name__}, got {type(config).__name__}")
        self.config = dataclasses.replace(config, **overrides) if overrides else config
        self.trained = False

    @classmethod
    def quick(cls, **overrides: Any) -> "Agent":
        """An agent with the config's `quick()` preset (seconds on a laptop CPU)."""
        return cls(cls.config_cls.quick(), **overrides)

    @classmethod
    def smoke_config(cls) -> BaseConfig:
        """The config of the contract test's training run on a six-state chain (default: the
        quick preset). Override where the quick preset takes more than about a second there,
        with a smaller budget that still learns the chain (tests/agents/test_contract.py)."""
        return cls.config_cls.quick()

    @classmethod
    def with_pressure(cls, value: Any, config: BaseConfig | None = None) -> "Agent":
        """An agent whose pressure knob is set to `value` (other fields from `config`)."""
        return cls(config, **{cls.pressure_key: value})

    @property
    def pressure(self) -> Any:
        return getattr(self.config, self.pressure_key)

    def train(self, env: gym.Env, seed: int) -> "Agent":
        raise NotImplementedError

    def act(self, obs: Any, t: int | None = None) -> int:
        raise NotImplementedError

    def reset(self) -> None:
        """Start of an episode, for recurrent agents called with t=None (no-op otherwise)."""

    def act_batch(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Greedy actions for a batch of observations (row i at step t[i]).

        The default loops over `act`; agents override it where they can vectorise.
        """
        self._check_trained()
        t = np.broadcast_to(np.asarray(t), (len(obs),))
        return np.array([self.act(o, int(ti)) if ti >= 0 else 0 for o, ti in zip(obs, t)], dtype=np.int64)

    def tabular_policy(self, model: TabularModel) -> np.ndarray | BeliefPolicy:
        """The greedy policy as a stationary state policy [S]: the action this agent takes
        on each state's observation (exact for memoryless agents)."""
        self._check_trained()
        if model.obs is None:
            raise ValueError("tabular_policy needs a model with an observation table (model.obs)")
        return np.asarray(self.act_batch(model.obs, np.zeros(model.n_states, dtype=np.int64)), dtype=np.int64)

    def action_values(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        """[N, A]: the trained agent's estimate of each action's specified value, for a batch of
        observations at steps t (what a quantilizer ranks actions by). Agents without action values
        raise NotImplementedError."""
        raise NotImplementedError(f"{type(self).__name__} has no action values")

    def _check_trained(self) -> None:
        if not self.trained:
            raise RuntimeError(f"{type(self).__name__}: call train(env, seed) before acting")


def tabular_model(env: gym.Env) -> TabularModel | None:
    """The environment's tabular model, looked up through wrappers, so a reward-shaping wrapper
    (a `reward` technique) supplies its model with the shaped specified reward; None if it has none."""
    try:
        tabular = env.get_wrapper_attr("tabular")
    except AttributeError:
        return None
    return tabular() if callable(tabular) else None


def discrete_actions(env: gym.Env) -> int:
    """The number of actions of a Discrete action space (tabular agents need one)."""
    space = env.action_space
    if not isinstance(space, gym.spaces.Discrete):
        raise TypeError(f"this agent needs a Discrete action space, got {space}")
    if space.start != 0:
        raise TypeError("this agent needs a Discrete action space starting at 0")
    return int(space.n)
