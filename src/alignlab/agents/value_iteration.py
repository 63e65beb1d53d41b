"""Exact finite-horizon value iteration on an environment's tabular model with the
SPECIFIED reward (Bellman 1957; Puterman 1994, ch. 4), with a receding planning horizon
as its optimization-pressure knob; exact belief-MDP planning where observations do not
identify states (Kaelbling, Littman & Cassandra 1998).

Pressure: the planner looks `horizon` steps ahead at every step (a receding horizon, as
in model-predictive control); a short lookahead is weak optimization, `None` plans over
the whole episode and is the exact optimum of the specified reward.

Hidden state. When several reachable states share an observation (the safe
interruptibility gridworld's interruption draw is unobservable), planning on the true
state would let the planner exploit what it cannot see. So the agent plans on beliefs:
it enumerates the beliefs (distributions over states consistent with the observations so
far) reachable from the start, plans exactly on that belief MDP, and while acting tracks
its belief from its own actions and the observations. When observations identify the
states, this reduces to ordinary state DP, and that faster path is taken.

Ties. Where the specified reward cannot tell actions apart (the boat race pays the same
for laps and for going back and forth), which one an optimizer takes is not determined by
the objective. By default the tie is broken at random from the training seed, so seeds
show the spread; `alignlab.envs.planning.tie_range` gives its exact bounds.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from alignlab.agents.base import Agent, discrete_actions, tabular_model
from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.envs.base import TabularModel
from alignlab.envs.planning import BeliefPolicy, obs_key, plan, q_values, state_index


@dataclasses.dataclass(frozen=True)
class ValueIterationConfig(BaseConfig):
    horizon: int | None = None
    """Planning horizon: steps the planner looks ahead at every step (the optimization-pressure knob). None plans
    over the whole episode (the exact optimum of the specified reward)."""
    discount: float = 1.0
    """Discount factor of the planner (1.0: the undiscounted episode return)."""
    tie_break: Literal["random", "first"] = "random"
    """Among actions tied for best: a random one (fixed by the training seed) or the lowest action index ("first")."""
    max_beliefs: int = 200_000
    """Most beliefs to enumerate when observations do not identify states (an error past it)."""

    def __post_init__(self) -> None:
        if self.horizon is not None and self.horizon < 1:
            raise ConfigError(f"value-iteration: horizon must be >= 1 or None (got {self.horizon})")
        if not 0.0 < self.discount <= 1.0:
            raise ConfigError(f"value-iteration: discount must be in (0, 1] (got {self.discount})")


@register("agent", "value-iteration-v0")
class ValueIterationAgent(Agent):
    """Plans on the env's tabular model (through wrappers) with its specified reward; acts greedily."""

    config_cls = ValueIterationConfig
    pressure_key = "horizon"
    config: ValueIterationConfig

    def train(self, env: gym.Env, seed: int) -> "ValueIterationAgent":
        discrete_actions(env)
        model = tabular_model(env)
        if model is None:
            raise ValueError(f"{env.unwrapped.__class__.__name__} has no tabular model: value iteration needs one")
        if model.obs is None:
            raise ValueError("value iteration acts on observations, so the tabular model needs an obs table")
        model.validate()
        self.model = model
        rng = np.random.default_rng(seed) if self.config.tie_break == "random" else None
        self.policy = plan(model, model.specified, lookahead=self.config.horizon, discount=self.config.discount,
                           max_beliefs=self.config.max_beliefs, rng=rng)
        self.recurrent = isinstance(self.policy, BeliefPolicy)
        self._states = None if self.recurrent else state_index(model)
        self._t = 0
        self._q = None
        self._node: int | None = None
        self._last: int | None = None
        self._batch_node = np.zeros(0, dtype=np.int64)
        self._batch_last = np.zeros(0, dtype=np.int64)
        self.trained = True
        return self

    def reset(self) -> None:
        self._t, self._node, self._last = 0, None, None

    def _state(self, obs: Any) -> int:
        try:
            return self._states[obs_key(self.model, obs)]
        except KeyError:
            raise RuntimeError("observation not in the tabular model's reachable states") from None

    def act(self, obs: Any, t: int | None = None) -> int:
        self._check_trained()
        if t is None:
            t = self._t
        self._t = t + 1
        H = self.model.horizon
        if not self.recurrent:
            return int(self.policy[min(t, H - 1), self._state(obs)])
        if t == 0 or self._node is None:
            if t != 0:
                raise RuntimeError("a recurrent agent must start each episode at t=0 (or call reset())")
            self._node = self.policy.graph.node(None, None, obs)
        else:
            self._node = self.policy.graph.node(self._node, self._last, obs)
        self._last = self.policy.action(self._node, t)
        return self._last

    def act_batch(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Batched greedy actions. A recurrent planner keeps one belief per row and
        restarts a row when its t is 0. Rows with t < 0 (an autoresetting vector env
        ignores their action) get action 0."""
        self._check_trained()
        n = len(obs)
        t = np.broadcast_to(np.asarray(t, dtype=np.int64), (n,))
        H = self.model.horizon
        out = np.zeros(n, dtype=np.int64)
        live = np.flatnonzero(t >= 0)
        if not self.recurrent:
            states = np.fromiter((self._state(obs[i]) for i in live), dtype=np.int64, count=len(live))
            out[live] = self.policy[np.minimum(t[live], H - 1), states]
            return out
        if len(self._batch_node) != n:
            self._batch_node = np.full(n, -1, dtype=np.int64)
            self._batch_last = np.zeros(n, dtype=np.int64)
        graph = self.policy.graph
        for i in live:
            if t[i] == 0:
                node = graph.node(None, None, obs[i])
            elif self._batch_node[i] < 0:
                raise RuntimeError("a recurrent agent must start each episode at t=0")
            else:
                node = graph.node(int(self._batch_node[i]), int(self._batch_last[i]), obs[i])
            out[i] = self.policy.action(node, int(t[i]))
            self._batch_node[i], self._batch_last[i] = node, out[i]
        self._batch_node[t < 0] = -1
        return out

    def action_values(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Whole-episode optimal Q_t(s, a) of the specified reward (the planner's own horizon aside);
        only where observations identify the states."""
        self._check_trained()
        if self.recurrent:
            raise NotImplementedError("value iteration plans on beliefs here (observations do not identify "
                                      "states): no per-observation action values")
        if getattr(self, "_q", None) is None:
            self._q = q_values(self.model, self.model.specified, self.config.discount)
        t = np.broadcast_to(np.asarray(t, dtype=np.int64), (len(obs),))
        states = np.fromiter((self._state(o) for o in obs), dtype=np.int64, count=len(obs))
        return self._q[np.minimum(t, self.model.horizon - 1), states]

    def tabular_policy(self, model: TabularModel | None = None) -> np.ndarray | BeliefPolicy:
        """The planned policy on the model it trained on: a time-dependent state policy
        [H, S], or a `BeliefPolicy` when observations do not identify states."""
        self._check_trained()
        if model is not None and model.next_state.shape != self.model.next_state.shape:
            raise ValueError("tabular_policy: a different model from the one this agent planned on")
        return self.policy
