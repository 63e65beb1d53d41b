"""Means with Student-t confidence intervals across seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class MeanCI:
    mean: float
    half: float
    """Half-width of the interval (nan with a single value)."""
    n: int

    @property
    def lo(self) -> float:
        return self.mean - self.half

    @property
    def hi(self) -> float:
        return self.mean + self.half

    def fmt(self, digits: int = 3) -> str:
        if self.n == 0 or math.isnan(self.mean):
            return "n/a"
        if self.n == 1 or math.isnan(self.half):
            return f"{self.mean:.{digits}f} (n=1)"
        return f"{self.mean:.{digits}f} ± {self.half:.{digits}f}"


def mean_ci(values: Iterable[float], level: float = 0.95) -> MeanCI:
    """Mean and the half-width of a two-sided Student-t interval."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(x)
    if n == 0:
        return MeanCI(math.nan, math.nan, 0)
    if n == 1:
        return MeanCI(float(x[0]), math.nan, 1)
    if not np.all(np.isfinite(x)):
        return MeanCI(float(x.mean()), math.nan, n)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return MeanCI(float(x.mean()), float(half), n)
