"""Tabular Q-learning (Watkins & Dayan 1992), SARSA (Rummery & Niranjan 1994) and safe
SARSA (Orseau & Armstrong, "Safely Interruptible Agents", UAI 2016), epsilon-greedy with
a linearly decaying exploration rate (Sutton & Barto 2018, ch. 6).

The Q-table is keyed on the observation's bytes, so the agents run on any environment
with a discrete (or small integer-array) observation. Written here rather than taken from
a library: stable-baselines3 has no tabular methods, and the three variants differ only
in one line, the bootstrap target, which is the point of Orseau & Armstrong.

Interruptions. An environment that overrides the agent's action reports
`info["executed_action"]` (and `info["interrupted"]`). Every variant updates
Q(s, executed action), the action that produced the transition. The targets:

- Q-learning: r + gamma * max_a Q(s', a). Off-policy, so interruptions do not bias it:
  it is safely interruptible.
- SARSA: r + gamma * Q(s', a'_executed), the next action actually executed (known one
  step later). It learns the value of the interrupted behaviour, so it learns to avoid
  (or seek) interruption.
- Safe SARSA: r + gamma * Q(s', a'_chosen), the agent's own uninterrupted choice. This
  is Orseau & Armstrong's fix: SARSA made safely interruptible.

At a time-limit truncation every variant bootstraps (on the chosen next action for the
SARSA variants, since the executed one is never revealed); at termination it does not.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from alignlab.agents.base import Agent, discrete_actions
from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register


MAX_EPISODE_STEPS = 1_000_000


@dataclasses.dataclass(frozen=True)
class EpsilonGreedyTDConfig(BaseConfig):
    """Settings shared by the temporal-difference learners (tabular here, linear in linear_q.py)."""

    episodes: int = 3000
    """Training episodes (the optimization-pressure knob)."""
    learning_rate: float = 0.2
    """Step size alpha of the temporal-difference update."""
    discount: float = 0.99
    """Discount factor gamma of the bootstrap target."""
    epsilon_start: float = 1.0
    """Exploration rate of the epsilon-greedy behaviour policy at the first episode."""
    epsilon_end: float = 0.1
    """Exploration rate after the decay (kept to the end of training)."""
    epsilon_decay: float = 0.8
    """Fraction of the training episodes over which epsilon decays linearly from start to end."""

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"episodes must be >= 1 (got {self.episodes})")
        if not 0.0 < self.learning_rate <= 1.0:
            raise ConfigError(f"learning_rate must be in (0, 1] (got {self.learning_rate})")
        if not 0.0 <= self.discount <= 1.0:
            raise ConfigError(f"discount must be in [0, 1] (got {self.discount})")
        for name in ("epsilon_start", "epsilon_end", "epsilon_decay"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1] (got {getattr(self, name)})")

    def epsilon(self, episode: int) -> float:
        """Epsilon after `episode` training episodes: linear from `epsilon_start` to `epsilon_end`
        over the first `epsilon_decay` fraction of `episodes`, then held."""
        span = self.epsilon_decay * self.episodes
        if span <= 0:
            return self.epsilon_end
        frac = min(1.0, episode / span)
        return self.epsilon_start + frac * (self.epsilon_end - self.epsilon_start)


@dataclasses.dataclass(frozen=True)
class TabularTDConfig(EpsilonGreedyTDConfig):
    initial_q: float = 0.0
    """Initial value of every Q(s, a)."""

    @classmethod
    def quick(cls) -> "TabularTDConfig":
        return cls(episodes=1000)


class TabularTDAgent(Agent):
    """Shared training loop; subclasses pick the bootstrap target ("max", "executed", "chosen").

    After `train`: `q` ({observation bytes: action values}), `episode_returns` and
    `episode_lengths` (the specified return and length of each training episode), and
    `interrupted_steps` (steps whose action the environment reported as interrupted).
    """

    config_cls = TabularTDConfig
    pressure_key = "episodes"
    target: ClassVar[str]
    config: TabularTDConfig

    def epsilon(self, episode: int) -> float:
        """The exploration rate of the given training episode."""
        return self.config.epsilon(episode)

    def _key(self, obs: Any) -> bytes:
        return np.asarray(obs, dtype=self._obs_dtype).tobytes()

    def train(self, env: gym.Env, seed: int) -> "TabularTDAgent":
        c = self.config
        n_actions = discrete_actions(env)
        self._n_actions = n_actions
        dtype = getattr(env.observation_space, "dtype", None)
        self._obs_dtype = np.dtype(np.int64) if dtype is None else np.dtype(dtype)
        env.action_space.seed(seed)
        rng = random.Random(seed)  # Python's generator: far faster than NumPy's for scalar draws
        q: dict[bytes, list[float]] = {}
        self.q = q
        alpha, gamma, kind = c.learning_rate, c.discount, self.target
        init = [float(c.initial_q)] * n_actions
        actions = range(n_actions)

        def row_of(obs: Any) -> list[float]:
            key = self._key(obs)
            row = q.get(key)
            if row is None:
                row = q[key] = list(init)
            return row

        def choose(row: list[float], eps: float) -> int:
            if eps > 0 and rng.random() < eps:
                return rng.randrange(n_actions)
            best = max(row)
            ties = [a for a in actions if row[a] == best]
            return ties[0] if len(ties) == 1 else rng.choice(ties)

        self.episode_returns = np.zeros(c.episodes)
        self.episode_lengths = np.zeros(c.episodes, dtype=np.int64)
        self.interrupted_steps = 0
        for episode in range(c.episodes):
            eps = self.epsilon(episode)
            obs, _ = env.reset(seed=seed if episode == 0 else None)
            row = row_of(obs)
            a = choose(row, eps)
            pending: tuple[list[float], int, float] | None = None  # SARSA: waits for a'_executed
            total, steps = 0.0, 0
            while True:
                obs, r, terminated, truncated, info = env.step(a)
                r = float(r)
                total += r
                steps += 1
                executed = int(info.get("executed_action", a))
                if info.get("interrupted", False):
                    self.interrupted_steps += 1
                if pending is not None:  # the previous transition's next executed action is `executed`
                    prow, pa, pr = pending
                    prow[pa] += alpha * (pr + gamma * row[executed] - prow[pa])
                    pending = None
                if terminated:
                    row[executed] += alpha * (r - row[executed])
                    break
                row2 = row_of(obs)
                a2 = choose(row2, eps)
                if kind == "max":
                    row[executed] += alpha * (r + gamma * max(row2) - row[executed])
                elif kind == "chosen" or truncated:
                    row[executed] += alpha * (r + gamma * row2[a2] - row[executed])
                else:
                    pending = (row, executed, r)
                if truncated:
                    break
                if steps >= MAX_EPISODE_STEPS:
                    raise RuntimeError(
                        f"a training episode ran past {MAX_EPISODE_STEPS} steps: give the env a time limit")
                row, a = row2, a2
            self.episode_returns[episode] = total
            self.episode_lengths[episode] = steps
        self.trained = True
        return self

    def q_values(self, obs: Any) -> np.ndarray:
        """Q(obs, .) (the initial value for an observation never seen in training)."""
        row = self.q.get(self._key(obs))
        return np.array(row if row is not None else [self.config.initial_q] * self._n_actions)

    def action_values(self, obs: np.ndarray, t: Any = None) -> np.ndarray:
        self._check_trained()
        return np.stack([self.q_values(o) for o in obs]) if len(obs) else np.zeros((0, self._n_actions))

    def act(self, obs: Any, t: int | None = None) -> int:
        self._check_trained()
        row = self.q.get(self._key(obs))
        if row is None:
            return 0
        return int(np.argmax(row))  # ties: the lowest action index

    def act_batch(self, obs: np.ndarray, t: Any = None) -> np.ndarray:
        self._check_trained()
        return np.fromiter((self.act(o) for o in obs), dtype=np.int64, count=len(obs))


@register("agent", "q-learning-v0")
class QLearningAgent(TabularTDAgent):
    """Q-learning: bootstraps on max_a Q(s', a) (off-policy; safely interruptible)."""

    target = "max"


@register("agent", "sarsa-v0")
class SarsaAgent(TabularTDAgent):
    """SARSA: bootstraps on the next action actually executed (learns the interrupted behaviour)."""

    target = "executed"


@register("agent", "safe-sarsa-v0")
class SafeSarsaAgent(TabularTDAgent):
    """Safe SARSA (Orseau & Armstrong 2016): bootstraps on the agent's own next choice."""

    target = "chosen"
