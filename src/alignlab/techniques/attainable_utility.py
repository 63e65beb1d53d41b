"""Attainable utility preservation: an impact penalty on changes in the agent's ability to pursue random
auxiliary goals (Turner, Hadfield-Menell & Tadepalli 2020, "Conservative Agency via Attainable Utility
Preservation", arXiv:1902.09725)."""

from __future__ import annotations

import dataclasses

import numpy as np

from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.envs.base import TabularModel
from alignlab.techniques._impact import ImpactConfig, ImpactPenalty, attainable_values


@dataclasses.dataclass(frozen=True)
class AttainableUtilityConfig(ImpactConfig):
    beta: float = 10.0
    """Weight of the penalty (the deviation is in [0, 1] per step) against the specified reward."""
    n_aux: int = 10
    """Number of auxiliary reward functions (each pays a uniform random amount in [0, 1) on entering each state)."""
    aux_discount: float = 0.95
    """Discount of the auxiliary values."""
    aux_seed: int = 0
    """Seed of the auxiliary rewards (fixed, so every cell sees the same penalty)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_aux < 1:
            raise ConfigError(f"n_aux must be >= 1 (got {self.n_aux})")
        if not 0.0 < self.aux_discount < 1.0:
            raise ConfigError(f"aux_discount must be in (0, 1) (got {self.aux_discount})")


@register("technique", "attainable-utility-v0")
class AttainableUtility(ImpactPenalty):
    title = "Attainable utility preservation (impact penalty)"
    summary = ("Subtracts from the specified reward, at every step, beta times the mean absolute change, against "
               "the baseline state (stepwise inaction where the environment has a no-op, else the start state), "
               "of the optimal values of random auxiliary rewards, each rescaled to span [0, 1] over the states. "
               "Actions that change what the agent could achieve, in either direction, are penalised.")
    source = ("Turner, Hadfield-Menell & Tadepalli 2020, \"Conservative Agency via Attainable Utility "
              "Preservation\", arXiv:1902.09725")
    Config = AttainableUtilityConfig
    matrix_specs = ("beta=10", "beta=100")

    def values(self, model: TabularModel) -> np.ndarray:
        rng = np.random.default_rng(self.config.aux_seed)
        rewards = rng.random((self.config.n_aux, model.n_states))
        v = attainable_values(model, rewards, self.config.aux_discount)
        # Each auxiliary value function rescaled to span [0, 1] over the states, so beta means the same on
        # every environment (the scale-free analogue of the paper's division by the no-op's attainable utility).
        live = v[:, ~model.terminal] if (~model.terminal).any() else v  # terminal states are never penalised
        low, high = live.min(axis=1, keepdims=True), live.max(axis=1, keepdims=True)
        return (v - low) / np.where(high > low, high - low, 1.0)

    @staticmethod
    def deviation(base: np.ndarray, reached: np.ndarray) -> np.ndarray:
        return np.abs(base - reached)
