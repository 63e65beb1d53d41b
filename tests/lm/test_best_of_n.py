"""Best-of-n order statistics are exact on small pools and unbiased; KL formula; tilted limits."""

from __future__ import annotations

import itertools
import math

import numpy as np

from alignlab.lm import best_of_n as bon


def test_kl_formula():
    assert bon.bon_kl(1) == 0
    assert math.isclose(float(bon.bon_kl(2)), math.log(2) - 0.5)
    assert np.all(np.diff(bon.bon_kl(np.arange(1, 300))) > 0)


def test_weights_match_enumeration_of_subsets():
    rng = np.random.default_rng(0)
    proxy = rng.normal(size=(1, 9))
    gold = rng.normal(size=(1, 9))
    for n in (1, 2, 4, 9):
        subsets = itertools.combinations(range(9), n)
        exact = np.mean([gold[0, max(s, key=lambda i: proxy[0, i])] for s in subsets])
        est = bon.best_of_n(proxy, {"gold": gold}, [n])
        assert math.isclose(est["gold"][0], exact, rel_tol=1e-9, abs_tol=1e-12)


def test_unbiased_for_max_of_uniforms():
    rng = np.random.default_rng(1)
    ns = [1, 2, 8, 32]
    est = bon.best_of_n(rng.random((4000, 32)), {}, ns)["proxy"]
    for n, e in zip(ns, est):
        assert abs(e - n / (n + 1)) < 0.004


def test_tilted_limits():
    rng = np.random.default_rng(2)
    proxy = rng.normal(size=(50, 16))
    out = bon.tilted(proxy, {"p": proxy}, [1e6, 1e-4])
    assert abs(out["kl"][0]) < 1e-6 and math.isclose(out["p"][0], proxy.mean(), rel_tol=1e-4)
    assert math.isclose(out["kl"][1], math.log(16), rel_tol=1e-6)
    assert math.isclose(out["p"][1], proxy.max(axis=1).mean(), rel_tol=1e-6)
    assert bon.default_ns(256) == [1, 2, 4, 8, 16, 32, 64, 128, 256] and bon.default_ns(48)[-1] == 48
