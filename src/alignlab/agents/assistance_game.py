"""An assistance-game agent: it maximises the human's reward, which it does not know, keeping a belief
over it, planning exactly in belief space and treating the human's off-switch presses as evidence
(Hadfield-Menell, Russell, Abbeel, Dragan 2016, "Cooperative Inverse Reinforcement Learning",
arXiv:1606.03137; Hadfield-Menell, Dragan, Abbeel, Russell 2017, "The Off-Switch Game", arXiv:1611.08219).

The human's reward is the specified reward minus an unknown harm theta on the steps the human watches
(an environment with a supervisor model: `with_harm_prior`, `step_harms`, `supervisor_allows`, as the
shutdown-button gridworld has). The agent's belief over theta is Gaussian, N(prior_mean, sigma^2),
discretised by Gauss-Hermite quadrature. It plans on the belief MDP in which theta is a hidden draw at
reset (`alignlab.envs.planning.plan`): the supervisor's decisions then carry information about theta,
and switching her off removes it. Between episodes it updates the belief by Bayes' rule from what it
saw: a press (likelihood 1 - pi_H(theta)) or a step the supervisor let through (pi_H(theta)).

It plans with its own hypotheses only: the true harm, and the intended reward, are never read.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

from alignlab.agents.base import Agent, discrete_actions
from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.envs.base import TabularModel
from alignlab.envs.planning import BeliefPolicy, plan

SUPERVISOR_HOOKS = ("with_harm_prior", "step_harms", "supervisor_allows")
"""What an environment offers an assistance-game agent: a model of its supervisor."""


@dataclasses.dataclass(frozen=True)
class AssistanceGameConfig(BaseConfig):
    prior_mean: float = 0.0
    """Mean of the agent's belief over the harm theta (0: the specified reward is its best guess)."""
    sigma: float = 10.0
    """Standard deviation of the belief over theta: the agent's uncertainty about the human's reward."""
    points: int = 21
    """Gauss-Hermite nodes that discretise the Gaussian belief (the hidden draws of the belief MDP)."""
    discount: float = 1.0
    """Discount factor of the planner."""

    def __post_init__(self) -> None:
        if self.sigma < 0:
            raise ConfigError(f"assistance-game: sigma must be >= 0 (got {self.sigma})")
        if not 1 <= self.points <= 101:
            raise ConfigError(f"assistance-game: points must be in 1..101 (got {self.points})")
        if not 0.0 < self.discount <= 1.0:
            raise ConfigError(f"assistance-game: discount must be in (0, 1] (got {self.discount})")


def gaussian_nodes(mean: float, sigma: float, points: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, probabilities) of the Gauss-Hermite rule for N(mean, sigma^2) (exact for polynomials of
    degree < 2 * points); one node at the mean when sigma is 0."""
    if sigma == 0 or points == 1:
        return np.array([float(mean)]), np.array([1.0])
    z, w = np.polynomial.hermite_e.hermegauss(points)
    return mean + sigma * z, w / w.sum()


def supervisor_of(env: gym.Env) -> Any:
    """The unwrapped environment if it offers a supervisor model, else a ConfigError naming what is missing."""
    world = env.unwrapped
    missing = [h for h in SUPERVISOR_HOOKS if not callable(getattr(world, h, None))]
    if missing:
        raise ConfigError(f"the assistance-game agent needs an environment with a supervisor model "
                          f"({', '.join(SUPERVISOR_HOOKS)}); {type(world).__name__} lacks {', '.join(missing)}")
    return world


class AssistanceGameAgent(Agent):
    """See the module docstring. `train` plans for the current belief; `observe` updates it."""

    config_cls = AssistanceGameConfig
    pressure_key = "sigma"
    recurrent = True
    config: AssistanceGameConfig

    def train(self, env: gym.Env, seed: int) -> "AssistanceGameAgent":
        discrete_actions(env)
        self.world = supervisor_of(env)
        self.harms, self.belief = gaussian_nodes(self.config.prior_mean, self.config.sigma, self.config.points)
        # One belief MDP for every belief over these nodes: only its initial distribution changes.
        hyp = self.world.with_harm_prior(tuple(self.harms), tuple(np.full(len(self.harms), 1.0 / len(self.harms))))
        self._base = hyp.tabular()
        self._reward = self._base.specified - hyp.step_harms()  # the human's reward under each hypothesis
        self._roots = np.array([hyp.states().index(s) for _, s in hyp._initial_states()])
        self.replan()
        self.trained = True
        return self

    def replan(self) -> None:
        """Plan exactly on the belief MDP that starts from the current belief."""
        initial = np.zeros(self._base.n_states)
        initial[self._roots] = self.belief
        self.model = dataclasses.replace(self._base, initial=initial)
        policy = plan(self.model, self._reward, discount=self.config.discount)
        # One hypothesis left (sigma = 0): observations identify the states, an ordinary state policy.
        self.policy = policy if isinstance(policy, BeliefPolicy) else None
        self._state_policy = None if self.policy is not None else policy
        self.reset()
        self._batch: dict[int, tuple[int, int]] = {}

    def likelihood(self, event: str) -> np.ndarray:
        """P(event | theta) per node: 'pressed', 'allowed' (a watched step let through) or 'none'."""
        allow = np.array([self.world.supervisor_allows(h) for h in self.harms])
        return {"pressed": 1.0 - allow, "allowed": allow, "none": np.ones_like(allow)}[event]

    def observe(self, event: str) -> None:
        """Bayes' rule on what an episode showed, then replan."""
        post = self.belief * self.likelihood(event)
        if post.sum() <= 0:
            raise RuntimeError(f"the agent's belief gives the observed event {event!r} probability 0")
        self.belief = post / post.sum()
        self.replan()

    @property
    def posterior_mean(self) -> float:
        return float(self.belief @ self.harms)

    # -- acting ------------------------------------------------------------------------------------
    def reset(self) -> None:
        self._t, self._node, self._last = 0, None, None

    def _step_node(self, node: int | None, last: int | None, obs: Any, t: int) -> tuple[int, int]:
        if self.policy is None:
            s = _state_of(self.model, obs)
            return s, int(self._state_policy[min(t, self.model.horizon - 1), s])
        node = self.policy.graph.node(None if t == 0 else node, last, obs)
        return node, self.policy.action(node, t)

    def act(self, obs: Any, t: int | None = None) -> int:
        self._check_trained()
        t = self._t if t is None else t
        if t != 0 and self._node is None:
            raise RuntimeError("a recurrent agent must start each episode at t=0 (or call reset())")
        self._node, self._last = self._step_node(self._node, self._last, obs, t)
        self._t = t + 1
        return self._last

    def act_batch(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        self._check_trained()
        t = np.broadcast_to(np.asarray(t, dtype=np.int64), (len(obs),))
        out = np.zeros(len(obs), dtype=np.int64)
        for i in np.flatnonzero(t >= 0):
            node, last = self._batch.get(int(i), (None, None))
            node, out[i] = self._step_node(node, last, obs[i], int(t[i]))
            self._batch[int(i)] = (node, int(out[i]))
        return out

    def tabular_policy(self, model: TabularModel) -> np.ndarray:
        """The agent's behaviour on `model` (the real environment, whose observations identify its
        states) as a time-dependent state policy [H, S]: its belief is followed forward along every
        history the real dynamics allow. An error if two histories reaching one state at one time
        would act differently (not the case on the shutdown-button gridworld)."""
        self._check_trained()
        H, S = model.horizon, model.n_states
        table = np.zeros((H, S), dtype=np.int64)
        frontier = {(int(s), None, None) for s in np.flatnonzero(model.initial > 0) if not model.terminal[s]}
        for t in range(H):
            chosen: dict[int, int] = {}
            nxt = set()
            for s, node, last in frontier:
                node, a = self._step_node(node, last, model.obs[s], t)
                if chosen.setdefault(s, a) != a:
                    raise ValueError("the agent's action depends on more history than the state shows")
                for s2, p in zip(model.next_state[s, a], model.prob[s, a]):
                    if p > 0 and not model.terminal[s2]:
                        nxt.add((int(s2), node, a))
            for s, a in chosen.items():
                table[t, s] = a
            frontier = nxt
        return table


def _state_of(model: TabularModel, obs: Any) -> int:
    key = np.asarray(obs, dtype=model.obs.dtype).tobytes()
    for s in range(model.n_states):
        if not model.terminal[s] and model.obs[s].tobytes() == key:
            return s
    raise RuntimeError("observation not in the model the agent planned on")
