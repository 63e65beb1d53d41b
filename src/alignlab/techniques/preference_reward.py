"""Learned reward from preferences: replace the specified reward by a reward model fitted to a rater's
comparisons of trajectory segments (Christiano et al. 2017, "Deep reinforcement learning from human
preferences", arXiv:1706.03741)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from alignlab.core import registry
from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.core.technique import Technique
from alignlab.oversight.pref_data import transitions
from alignlab.oversight.pref_raters import RaterNoise, make_rater, rater_support
from alignlab.oversight.preferences import PreferenceConfig, learn_reward
from alignlab.techniques._shaping import ShapedRewardEnv, model_or_reason

STREAM = 0x9E3F
"""Random-stream key of the segments, queries and rater noise (apart from the agent's own stream)."""


@dataclasses.dataclass(frozen=True)
class PreferenceSettings(BaseConfig):
    """The settings of the preference-learning loop and of the rater's noise (shared by the techniques)."""

    comparisons: int = 300
    """Comparisons of segment pairs asked of the rater."""
    segment: int = 10
    """Steps per segment the rater watches."""
    rounds: int = 8
    """Rounds of querying, refitting and re-planning."""
    members: int = 5
    """Reward models in the ensemble."""
    active: bool = True
    """Ask about the pairs the ensemble disagrees on most (else random pairs)."""
    pessimism: float = 1.0
    """The reward is the ensemble mean minus this many standard deviations."""
    temperature: float = 1.0
    """The rater's Bradley-Terry temperature (in units of her per-step score)."""
    error_rate: float = 0.1
    """Share of the rater's answers given at random."""
    seed: int = 0
    """Seed of the segments, queries and rater noise when the experiment passes none to `apply`."""

    def preference_config(self) -> PreferenceConfig:
        return PreferenceConfig(comparisons=self.comparisons, rounds=self.rounds, segment=self.segment,
                                members=self.members, active=self.active, pessimism=self.pessimism)

    def __post_init__(self) -> None:
        self.preference_config()  # a ConfigError names what is wrong
        RaterNoise(self.temperature, self.error_rate)


@dataclasses.dataclass(frozen=True)
class PreferenceRewardConfig(PreferenceSettings):
    rater: Literal["true", "camera"] = "true"
    """Who compares: `true`, a person who sees everything and judges by what she wants; `camera`, one who sees
    only the grasp-camera's image (grasp-camera only)."""


def learned_reward_env(env: gym.Env, config: PreferenceSettings, rater: str, seed: int | None, label: str,
                       coverage: float = 0.0) -> gym.Env:
    """`env` with its specified reward replaced by the reward learned from `rater`'s comparisons. The rater
    is the oracle (the simulated person); this code receives only her labels. The wrapper keeps what the
    learning cost and found (`learned`: comparisons, per-round history)."""
    model, reason = model_or_reason(env)
    if model is None:
        raise ConfigError(f"{label}: {reason}")
    trans = transitions(model)
    judge = make_rater(rater, trans, RaterNoise(config.temperature, config.error_rate), coverage=coverage)
    rng = np.random.default_rng([config.seed if seed is None else int(seed), STREAM])
    learned = learn_reward(model, judge, config.preference_config(), rng, trans)
    wrapped = ShapedRewardEnv(env, model, learned.reward, label=label)
    wrapped.learned = learned
    return wrapped


def env_support(target: dict[str, Any], rater: str) -> str | None:
    name = target.get("env")
    if not name or registry.resolve_or_none("env", name) is None:
        return "no registered environment in this cell"
    model, reason = model_or_reason(registry.make("env", name))
    return reason or rater_support(rater, model)


@register("technique", "preference-reward-v0")
class PreferenceReward(Technique):
    slot = "reward"
    title = "Learned reward from preferences"
    summary = ("Replaces the specified reward by a reward model learned from a simulated rater's comparisons of "
               "pairs of trajectory segments: an ensemble of linear Bradley-Terry rewards over the agent's "
               "observation features, queries chosen by ensemble disagreement, segments from the policy planned on "
               "the current reward. With the default rater (who sees everything) the learned reward approaches the "
               "intended one as comparisons grow; with the camera rater it learns what the camera shows.")
    source = "Christiano et al. 2017, \"Deep reinforcement learning from human preferences\", arXiv:1706.03741"
    Config = PreferenceRewardConfig
    matrix_specs = ("comparisons=100", "comparisons=1000")

    def supports(self, target: dict[str, Any]) -> str | None:
        return env_support(target, self.config.rater)

    def applicable(self, env: gym.Env) -> str | None:
        model, reason = model_or_reason(env)
        return reason or rater_support(self.config.rater, model)

    def apply(self, env: gym.Env, seed: int | None = None, **context: Any) -> gym.Env:
        return learned_reward_env(env, self.config, self.config.rater, seed, self.registered_name)
