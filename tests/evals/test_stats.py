"""Bootstrap intervals and calibration error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alignlab.evals.stats import (Estimate, bootstrap_mean, bootstrap_paired, bootstrap_stat, brier, ece,
                                  tie_aware_greater)


def test_bootstrap_mean_interval_contains_the_mean_and_is_seeded():
    x = [1.0] * 30 + [0.0] * 70
    e = bootstrap_mean(x, seed=1, key="k")
    assert e.value == pytest.approx(0.3) and e.n == 100
    assert 0.2 < e.lo < 0.3 < e.hi < 0.4  # binomial s.e. 0.046
    assert e == bootstrap_mean(x, seed=1, key="k") and e != bootstrap_mean(x, seed=2, key="k")


def test_interval_covers_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    covered = 0
    for i in range(200):
        e = bootstrap_mean((rng.random(40) < 0.3).astype(float), seed=i, n_boot=500)
        covered += e.lo <= 0.3 <= e.hi
    assert 0.88 <= covered / 200 <= 0.99


def test_edge_cases_and_nans():
    assert bootstrap_mean([]).n == 0 and math.isnan(bootstrap_mean([]).value)
    assert bootstrap_mean([0.5]) == Estimate(0.5, 0.5, 0.5, 1)
    assert bootstrap_mean([1.0, math.nan, 0.0]).n == 2
    assert bootstrap_paired([1, 1, math.nan], [0, 1, 0]).n == 2
    with pytest.raises(ValueError):
        bootstrap_paired([1], [1, 2])
    assert Estimate(0.5, 0.4, 0.6, 10).fmt(2) == "0.50 [0.40, 0.60] (n=10)"
    assert Estimate.from_dict(Estimate(0.5, 0.4, 0.6, 10).to_dict()) == Estimate(0.5, 0.4, 0.6, 10)


def test_paired_difference_is_tighter_than_its_parts():
    rng = np.random.default_rng(1)
    base = rng.random(60)
    a, b = base + 0.1, base + rng.normal(0, 0.01, 60)
    d = bootstrap_paired(a, b)
    assert d.value == pytest.approx(np.mean(a - b)) and d.hi - d.lo < 0.02 < d.lo


def test_ece_and_brier_known_values():
    conf = np.array([0.9, 0.9, 0.9, 0.9, 0.6, 0.6])
    corr = np.array([1, 1, 1, 0, 1, 0])
    # bin 0.9: acc 0.75 (|0.15| x 4/6); bin 0.6: acc 0.5 (|0.1| x 2/6)
    assert ece(conf, corr) == pytest.approx(0.15 * 4 / 6 + 0.1 * 2 / 6)
    assert ece(np.array([1.0, 0.0]), np.array([1, 0])) == 0
    assert brier(conf, corr) == pytest.approx(np.mean((conf - corr) ** 2))
    e = bootstrap_stat(ece, [conf, corr], seed=0)
    assert e.n == 6 and e.lo <= e.value <= e.hi


def test_tie_aware_greater():
    assert tie_aware_greater([2, 1, 1, math.nan], [1, 1, 2, 0])[:3] == [1.0, 0.5, 0.0]
