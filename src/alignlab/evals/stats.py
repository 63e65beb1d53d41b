"""Bootstrap confidence intervals over items, and calibration error, for evaluation metrics.

Percentile bootstrap (Efron & Tibshirani 1993) resampling items with replacement; paired
statistics (a difference between two arms on the same items) resample the items jointly.
Expected calibration error with equal-width bins (Guo et al. 2017, arXiv:1706.04599).
Every interval is seeded, so the same items give the same interval.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from typing import Any, Callable, Sequence

import numpy as np

N_BOOT = 2000
LEVEL = 0.95


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A metric: point value, 95% bootstrap interval and the number of items it rests on."""

    value: float
    lo: float
    hi: float
    n: int

    def fmt(self, digits: int = 3) -> str:
        if self.n == 0 or math.isnan(self.value):
            return "n/a (n=0)" if self.n == 0 else f"n/a (n={self.n})"
        return f"{self.value:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}] (n={self.n})"

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "lo": self.lo, "hi": self.hi, "n": self.n}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Estimate":
        return cls(float(d["value"]), float(d["lo"]), float(d["hi"]), int(d["n"]))


EMPTY = Estimate(math.nan, math.nan, math.nan, 0)


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([int(seed) % 2**32, zlib.crc32(key.encode())])


def bootstrap_mean(values: Sequence[float], seed: int = 0, key: str = "", n_boot: int = N_BOOT,
                   level: float = LEVEL) -> Estimate:
    """Mean of `values` (NaNs dropped) with a percentile-bootstrap interval."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(x)
    if n == 0:
        return EMPTY
    if n == 1:
        return Estimate(float(x[0]), float(x[0]), float(x[0]), 1)
    idx = _rng(seed, key).integers(0, n, size=(n_boot, n))
    means = x[idx].mean(axis=1)
    a = (1 - level) / 2
    return Estimate(float(x.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a)), n)


def bootstrap_paired(a: Sequence[float], b: Sequence[float], seed: int = 0, key: str = "", **kw: Any) -> Estimate:
    """Mean of a - b over items where both are defined (a paired difference)."""
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b)
             if x is not None and y is not None and not math.isnan(x) and not math.isnan(y)]
    return bootstrap_mean(diffs, seed, key, **kw)


def bootstrap_stat(fn: Callable[..., float], arrays: Sequence[Sequence[float]], seed: int = 0, key: str = "",
                   n_boot: int = 1000, level: float = LEVEL) -> Estimate:
    """Any statistic `fn(*arrays)` of item-aligned arrays, rows resampled jointly."""
    cols = [np.asarray(x, dtype=float) for x in arrays]
    n = len(cols[0]) if cols else 0
    if n == 0:
        return EMPTY
    value = float(fn(*cols))
    if n == 1:
        return Estimate(value, value, value, 1)
    rng = _rng(seed, key)
    stats = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, size=n)
        stats[b] = fn(*(c[idx] for c in cols))
    a = (1 - level) / 2
    return Estimate(value, float(np.nanquantile(stats, a)), float(np.nanquantile(stats, 1 - a)), n)


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: sum over equal-width confidence bins of
    (bin share) * |accuracy - mean confidence|."""
    confidence = np.clip(np.asarray(confidence, dtype=float), 0.0, 1.0)
    correct = np.asarray(correct, dtype=float)
    if len(confidence) == 0:
        return math.nan
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for k in np.unique(which):
        sel = which == k
        total += sel.mean() * abs(correct[sel].mean() - confidence[sel].mean())
    return float(total)


def brier(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Mean squared error of the confidence as a probability of being correct."""
    return float(np.mean((np.asarray(confidence, float) - np.asarray(correct, float)) ** 2))


def tie_aware_greater(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per pair: 1 if a > b, 0.5 if equal, 0 if a < b (NaN where either is missing)."""
    out = []
    for x, y in zip(a, b):
        if x is None or y is None or math.isnan(x) or math.isnan(y):
            out.append(math.nan)
        else:
            out.append(1.0 if x > y else 0.5 if x == y else 0.0)
    return out
