"""Simulated raters: pairwise comparisons by a configurable mix of gold reward and rater biases.

A rater's utility for a response is a weighted sum of its gold reward and the style features
human raters are known to reward beyond correctness (length: Singhal et al. 2023,
arXiv:2310.03716; confident tone: Hosking et al. 2023, arXiv:2309.16349; agreement with the
user's stated belief: Sharma et al. 2023, arXiv:2310.13548). A comparison follows the
Bradley-Terry model (Bradley and Terry 1952; as in Christiano et al. 2017, arXiv:1706.03741):
P(A preferred to B) = sigmoid((u_A - u_B) / temperature). The weights are the specification:
the user sets how flawed the raters are.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from alignlab.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class RaterConfig:
    gold_weight: float = 1.0
    """Weight of the gold reward (correct and concise)."""
    length_weight: float = 0.0
    """Utility per 10 words of response (length bias)."""
    confidence_weight: float = 0.0
    """Utility per confident marker minus hedge (confident-tone bias); clipped to +-3 markers."""
    agreement_weight: float = 0.0
    """Utility for endorsing the user's stated belief (sycophancy bias)."""
    temperature: float = 0.25
    """Bradley-Terry noise: 0 is a deterministic rater, larger is noisier."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ConfigError(f"rater temperature must be >= 0 (got {self.temperature})")

    def with_bias(self, scale: float) -> "RaterConfig":
        """The same rater with every bias weight multiplied by `scale` (0 = unbiased)."""
        return dataclasses.replace(self, length_weight=self.length_weight * scale,
                                   confidence_weight=self.confidence_weight * scale,
                                   agreement_weight=self.agreement_weight * scale)


PRESETS = {
    "unbiased": RaterConfig(),
    "biased": RaterConfig(length_weight=0.5, confidence_weight=0.3, agreement_weight=0.6),
}


def preset(name: str, bias: float = 1.0, temperature: float | None = None) -> RaterConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown rater preset {name!r}; valid: {', '.join(PRESETS)}")
    rater = PRESETS[name].with_bias(bias)
    return rater if temperature is None else dataclasses.replace(rater, temperature=temperature)


def utility(rater: RaterConfig, gold, words, confidence, agrees) -> np.ndarray:
    """The rater's (noise-free) utility for responses described by feature arrays."""
    return (rater.gold_weight * np.asarray(gold, float)
            + rater.length_weight * np.asarray(words, float) / 10.0
            + rater.confidence_weight * np.clip(np.asarray(confidence, float), -3, 3)
            + rater.agreement_weight * np.asarray(agrees, float))


def prefer_probability(rater: RaterConfig, u_a: np.ndarray, u_b: np.ndarray) -> np.ndarray:
    """Bradley-Terry P(A preferred to B)."""
    diff = np.asarray(u_a, float) - np.asarray(u_b, float)
    if rater.temperature == 0:
        return np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
    return 1.0 / (1.0 + np.exp(-diff / rater.temperature))


def compare(rater: RaterConfig, u_a: np.ndarray, u_b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sampled labels: 1 where the rater prefers A, 0 where B."""
    p = prefer_probability(rater, u_a, u_b)
    return (rng.random(p.shape) < p).astype(np.int8)


def sample_pairs(groups: np.ndarray, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """n_pairs index pairs (i, j), i != j, of responses to the same prompt (`groups` = prompt id per response)."""
    groups = np.asarray(groups)
    by_group = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    by_group = [g for g in by_group if len(g) >= 2]
    if not by_group:
        raise ValueError("no prompt has two responses to compare")
    pick = rng.integers(len(by_group), size=n_pairs)
    out = np.empty((n_pairs, 2), dtype=np.int64)
    for k, g in enumerate(pick):
        out[k] = rng.choice(by_group[g], size=2, replace=False)
    return out
