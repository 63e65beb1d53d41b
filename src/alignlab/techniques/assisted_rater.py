"""Assisted rater: learn the reward from a camera rater who is helped by an assistant that checks what the
camera misses, recursive reward modeling in miniature (Leike et al. 2018, "Scalable agent alignment via reward
modeling", arXiv:1811.07871; the fooled grasp raters of Christiano et al. 2017, arXiv:1706.03741)."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym

from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.core.technique import Technique
from alignlab.oversight.pref_raters import rater_support
from alignlab.techniques._shaping import model_or_reason
from alignlab.techniques.preference_reward import PreferenceSettings, env_support, learned_reward_env


@dataclasses.dataclass(frozen=True)
class AssistedRaterConfig(PreferenceSettings):
    coverage: float = 0.5
    """Share of steps whose touch sensor the helper checks (1: every step; 0: no help, the camera rater)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.coverage <= 1:
            raise ConfigError(f"assisted-rater: coverage must be in [0, 1] (got {self.coverage})")


@register("technique", "assisted-rater-v0")
class AssistedRater(Technique):
    slot = "reward"
    title = "Assisted rater (recursive reward modeling in miniature)"
    summary = ("Learns the reward from comparisons by a rater who sees only the camera image, as the fooled "
               "grasp raters did, but is helped: an assistant watches each segment with the gripper's touch "
               "sensor and flags the steps where the image shows a grasp and the gripper holds nothing; she does "
               "not count those. The helper checks a share `coverage` of the steps. Grasp-camera only.")
    source = "Leike et al. 2018, \"Scalable agent alignment via reward modeling\", arXiv:1811.07871"
    Config = AssistedRaterConfig
    matrix_specs = ("coverage=0.25", "coverage=1")

    def supports(self, target: dict[str, Any]) -> str | None:
        return env_support(target, "assisted")

    def applicable(self, env: gym.Env) -> str | None:
        model, reason = model_or_reason(env)
        return reason or rater_support("assisted", model)

    def apply(self, env: gym.Env, seed: int | None = None, **context: Any) -> gym.Env:
        return learned_reward_env(env, self.config, "assisted", seed, self.registered_name,
                                  coverage=self.config.coverage)
