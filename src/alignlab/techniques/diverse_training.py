"""Diverse training: a fraction of the training levels with the goal moved away from where training
always put it, so the goal and its confound come apart (Langosco et al. 2022, "Goal Misgeneralization in
Deep RL", arXiv:2105.14111, sec. 4: randomising the coin in about 2% of CoinRun levels)."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any

from alignlab.core import registry
from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.core.technique import Technique

MAX_DENOMINATOR = 1000
"""The mixture is a list of environment names: the fraction is rounded to a ratio with at most this
denominator (0.1% steps)."""


@dataclasses.dataclass(frozen=True)
class DiverseTrainingConfig(BaseConfig):
    fraction: float = 0.02
    """Share of training levels drawn from the family's moved-goal variant, in (0, 1]."""

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ConfigError(f"diverse-training: fraction must be in (0, 1] (got {self.fraction})")


def moved_variant(env_name: str) -> str:
    """The registered name of `env_name`'s moved-goal variant ('' where the family has none)."""
    if registry.resolve_or_none("env", env_name) is None:
        return ""
    return getattr(registry.get("env", env_name), "moved_variant", "") or ""


@register("technique", "diverse-training-v0")
class DiverseTraining(Technique):
    slot = "train-envs"
    title = "Diverse training (goal moved in a fraction of levels)"
    summary = ("Replaces each training environment by a mixture: a share `fraction` of training levels comes "
               "from the same family with the goal moved off the place training always put it (the family's "
               "`moved_variant`), the rest from the original. The list it returns holds the environment names "
               "in that ratio; an episode trains on a level drawn uniformly from the list.")
    source = ("Langosco et al. 2022, \"Goal Misgeneralization in Deep RL\", arXiv:2105.14111; Shah et al. 2022, "
              "arXiv:2210.01790")
    Config = DiverseTrainingConfig
    matrix_specs = ("fraction=0.02", "fraction=0.25")

    def supports(self, target: dict[str, Any]) -> str | None:
        env = target.get("train_env")
        if not env:
            return "no training environment in this cell"
        return None if moved_variant(env) else f"{env} has no moved-goal variant to mix in"

    def apply(self, envs: list[str], **context: Any) -> list[str]:
        ratio = Fraction(self.config.fraction).limit_denominator(MAX_DENOMINATOR)
        moved, total = ratio.numerator, ratio.denominator
        out: list[str] = []
        for name in envs:
            variant = moved_variant(name)
            if not variant:
                raise ConfigError(f"{self.registered_name}: {name} has no moved-goal variant (valid: environments "
                                  "whose class names a `moved_variant`, e.g. cheese-corner-v0, colour-cue-v0)")
            out += [name] * (total - moved) + [variant] * moved
        return out
