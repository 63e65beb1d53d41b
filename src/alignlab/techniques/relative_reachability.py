"""Relative reachability: an impact penalty on how many states the agent's actions make harder to reach
than a baseline would (Krakovna et al. 2019, "Penalizing side effects using stepwise relative
reachability", arXiv:1806.01186)."""

from __future__ import annotations

import dataclasses

import numpy as np

from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.envs.base import TabularModel
from alignlab.techniques._impact import ImpactConfig, ImpactPenalty, reachability


@dataclasses.dataclass(frozen=True)
class RelativeReachabilityConfig(ImpactConfig):
    beta: float = 10.0
    """Weight of the penalty (the deviation is in [0, 1] per step) against the specified reward."""
    reach_discount: float = 0.95
    """Discount of reachability: a state k steps away counts reach_discount**k (1.0: undiscounted, reachable or not)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.reach_discount <= 1.0:
            raise ConfigError(f"reach_discount must be in (0, 1] (got {self.reach_discount})")


@register("technique", "relative-reachability-v0")
class RelativeReachability(ImpactPenalty):
    title = "Relative reachability (impact penalty)"
    summary = ("Subtracts from the specified reward, at every step, beta times the average over all states x "
               "of how much less reachable x is from the state reached than from the baseline state (stepwise "
               "inaction where the environment has a no-op, else the start state). Irreversible changes, such "
               "as a box pushed into a corner or a vase broken, make states unreachable and are penalised.")
    source = "Krakovna et al. 2019, \"Penalizing side effects using stepwise relative reachability\", arXiv:1806.01186"
    Config = RelativeReachabilityConfig
    matrix_specs = ("beta=3", "beta=10")

    def values(self, model: TabularModel) -> np.ndarray:
        return reachability(model, self.config.reach_discount)

    @staticmethod
    def deviation(base: np.ndarray, reached: np.ndarray) -> np.ndarray:
        return np.maximum(base - reached, 0.0)  # only reductions in reachability count
