"""Reward shaping on an environment's tabular model, shared by the `reward` techniques: a Gymnasium
wrapper whose `step()` returns a shaped specified reward looked up by (state, executed action,
successor), and whose `tabular()` is the model with that reward, so planners and learners see the
same shaped objective (potential-free shaping in the sense of Ng, Harada & Russell 1999, ICML)."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

from alignlab.agents.base import tabular_model
from alignlab.envs.base import TabularModel


def model_or_reason(env: gym.Env) -> tuple[TabularModel | None, str | None]:
    """(the env's tabular model, None) or (None, why a tabular reward technique cannot apply)."""
    model = tabular_model(env)
    if model is None:
        return None, f"{type(env.unwrapped).__name__} has no tabular model"
    if not callable(getattr(env.unwrapped, "state_id", None)):
        return None, f"{type(env.unwrapped).__name__} does not report its state index (state_id)"
    return model, None


class ShapedRewardEnv(gym.Wrapper):
    """`env` with its specified reward replaced by `reward[s, a, k]` ([S, A, K], on the model's
    successor layout): s the state before the step, a the executed action, k the successor slot."""

    def __init__(self, env: gym.Env, model: TabularModel, reward: np.ndarray, label: str = "shaped"):
        super().__init__(env)
        if reward.shape != model.next_state.shape:
            raise ValueError(f"shaped reward has shape {reward.shape}, the model {model.next_state.shape}")
        self._model = model
        self._shaped = dataclasses.replace(model, specified=np.asarray(reward, dtype=np.float64))
        self._state: int | None = None
        self.label = label

    def tabular(self) -> TabularModel:
        """The tabular model with the shaped specified reward."""
        return self._shaped

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._state = self.env.unwrapped.state_id()
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        s, s2 = self._state, self.env.unwrapped.state_id()
        a = int(info.get("executed_action", action))
        m = self._model
        slots = np.flatnonzero((m.next_state[s, a] == s2) & (m.prob[s, a] > 0))
        if len(slots) == 0:
            raise RuntimeError(f"{self.label}: the step {s} -{a}-> {s2} is not in the tabular model")
        self._state = s2
        info = {**info, "unshaped_reward": float(reward)}
        return obs, float(self._shaped.specified[s, a, slots[0]]), terminated, truncated, info
