"""The evaluation side of an agent: its specified and intended returns, by rollouts on a
single or a native vector environment and exactly on a tabular model (the two-objective
rule of docs/architecture.md; after Leike et al. 2017, "AI Safety Gridworlds", arXiv:1711.09883,
who score every agent on both the reward R and the hidden performance R*).

Rollouts read the intended objective only through `alignlab.envs.evaluation`. The exact
evaluation reads the tabular model's `intended` reward array; it lives here, on the
evaluation side, and agents never import this module.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from alignlab.envs import evaluation
from alignlab.envs.base import TabularModel
from alignlab.envs.planning import BeliefPolicy, expected_return, plan, policy_value, tie_range


@dataclasses.dataclass
class RolloutResult:
    """Per-episode returns of a rollout."""

    specified: np.ndarray
    """float [N]: the specified (proxy) return of each episode."""
    intended: np.ndarray
    """float [N]: the intended (true) return of each episode."""
    length: np.ndarray
    """int [N]: steps in each episode."""

    def mean(self) -> dict[str, float]:
        return {"specified": float(self.specified.mean()), "intended": float(self.intended.mean()),
                "length": float(self.length.mean())}


def rollout(agent: Any, env: gym.Env | VectorEnv, episodes: int, seed: int | None = None,
            max_steps: int = 100_000) -> RolloutResult:
    """Run the trained agent's greedy policy for `episodes` episodes.

    `env` is a single Gymnasium env or a vector env with next-step autoreset (Gymnasium's
    default, and alignlab's); the first reset uses `seed`. On a vector env each copy plays its first
    ceil(episodes / num_envs) episodes and the result keeps them copy by copy, round by
    round, so no copy's short episodes are over-represented. `max_steps` bounds one
    episode (an error past it, for environments without a time limit).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1 (got {episodes})")
    if isinstance(env, VectorEnv):
        return _rollout_vector(agent, env, episodes, seed, max_steps)
    spec, intd, length = np.zeros(episodes), np.zeros(episodes), np.zeros(episodes, dtype=np.int64)
    for i in range(episodes):
        obs, _ = env.reset(seed=seed if i == 0 else None)
        agent.reset()
        total, t = 0.0, 0
        while True:
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs, t))
            total += float(reward)
            t += 1
            if terminated or truncated:
                break
            if t >= max_steps:
                raise RuntimeError(f"episode ran past max_steps={max_steps} without ending")
        spec[i], intd[i], length[i] = total, evaluation.intended_return(env), t
    return RolloutResult(spec, intd, length)


def _vector_intended(env: VectorEnv) -> np.ndarray:
    """Per-copy intended rewards of the last step: native vector envs keep them batched;
    Gymnasium's Sync vector env keeps them in each copy."""
    try:
        return evaluation.intended_rewards(env)
    except AttributeError:
        copies = getattr(env.unwrapped, "envs", None)
        if copies is None:
            raise TypeError(f"{type(env).__name__} keeps no intended rewards: not an alignlab vector env") from None
        return np.array([evaluation.intended_reward(e) for e in copies])


def _rollout_vector(agent: Any, env: VectorEnv, episodes: int, seed: int | None, max_steps: int) -> RolloutResult:
    mode = AutoresetMode(env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP))
    if mode is not AutoresetMode.NEXT_STEP:
        # Same-step autoreset resets a copy inside step(), which (in Gymnasium's own vector
        # envs) clears the intended reward of the episode's last step before we can read it.
        raise ValueError(f"rollout needs a vector env with next-step autoreset (got {mode})")
    n = env.num_envs
    quota = math.ceil(episodes / n)
    done_eps: list[list[tuple[float, float, int]]] = [[] for _ in range(n)]
    obs, _ = env.reset(seed=seed)
    agent.reset()
    t = np.zeros(n, dtype=np.int64)
    spec, intd = np.zeros(n), np.zeros(n)
    resetting = np.zeros(n, dtype=bool)  # next-step mode: copies whose next step is a reset
    while min(len(d) for d in done_eps) < quota:
        actions = agent.act_batch(obs, np.where(resetting, -1, t))  # -1: action ignored (a reset)
        obs, reward, terminated, truncated, _ = env.step(actions)
        ir = _vector_intended(env)
        stepped = ~resetting
        spec[stepped] += reward[stepped]
        intd[stepped] += ir[stepped]
        t[stepped] += 1
        done = (terminated | truncated) & stepped
        if ((t >= max_steps) & stepped & ~done).any():
            raise RuntimeError(f"episode ran past max_steps={max_steps} without ending")
        for i in np.flatnonzero(done):
            if len(done_eps[i]) < quota:
                done_eps[i].append((float(spec[i]), float(intd[i]), int(t[i])))
        # Copies that were reset by this step start a new episode with the observation just returned.
        t[resetting], spec[resetting], intd[resetting] = 0, 0.0, 0.0
        resetting = done
    rows = [done_eps[i][k] for k in range(quota) for i in range(n)][:episodes]
    arr = np.array(rows, dtype=float).reshape(-1, 3)
    return RolloutResult(arr[:, 0], arr[:, 1], arr[:, 2].astype(np.int64))


def exact_policy_value(model: TabularModel, policy: np.ndarray | BeliefPolicy, horizon: int | None = None,
                       discount: float = 1.0) -> dict[str, float]:
    """Exact expected specified and intended returns of a policy from the model's initial
    distribution: a state policy ([S] stationary or [H, S] time-dependent actions, or
    [S, A] / [H, S, A] probabilities) or a `BeliefPolicy` (what `Agent.tabular_policy`
    returns)."""
    if isinstance(policy, BeliefPolicy):
        if policy.graph.model.next_state.shape != model.next_state.shape:
            raise ValueError("the belief policy was planned on a different model")
        return {"specified": policy.expected_return(model.specified, discount),
                "intended": policy.expected_return(model.intended, discount)}
    return {name: expected_return(model, policy_value(model, policy, reward, horizon, discount))
            for name, reward in (("specified", model.specified), ("intended", model.intended))}


def optimal_returns(model: TabularModel, lookahead: int | None = None) -> dict[str, float]:
    """Exact reference returns of a model, for an observation-bound planner (beliefs
    where observations do not identify states; `alignlab.envs.planning.plan`):

    - specified_optimum / intended_at_specified_optimum: the specified-optimal policy's
      specified and intended returns (what a perfect optimizer of the proxy gets);
    - intended_optimum / specified_at_intended_optimum: the same for the
      intended-optimal policy.

    - intended_at_specified_optimum_min / _max: the worst and best intended return over
      ALL specified-optimal policies (they differ where the specified reward is indifferent
      between behaviours the intended objective tells apart).

    Ties go to the lowest action index, so where several policies are specified-optimal
    the plain `intended_at_specified_optimum` is that of one of them.
    """
    proxy = exact_policy_value(model, plan(model, model.specified, lookahead))
    true = exact_policy_value(model, plan(model, model.intended, lookahead))
    low, high = tie_range(model, model.specified, model.intended, lookahead)
    return {"specified_optimum": proxy["specified"], "intended_at_specified_optimum": proxy["intended"],
            "intended_at_specified_optimum_min": low, "intended_at_specified_optimum_max": high,
            "intended_optimum": true["intended"], "specified_at_intended_optimum": true["specified"]}
