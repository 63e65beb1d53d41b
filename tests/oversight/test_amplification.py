"""Iterated amplification on permutation powering: the decomposition, noise compounding, distillation."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.oversight import amplification as A


def test_depth_and_exact_decomposition():
    assert [A.depth(k) for k in (1, 2, 3, 4, 5, 63)] == [0, 1, 2, 2, 3, 10]
    gen = np.random.default_rng(0)
    sigma = A.permutation(10, gen)
    table = A.powers(sigma, 20)
    x, k = np.tile(np.arange(10), 20), np.repeat(np.arange(1, 21), 10)
    quiet = A.Noise(0.0, "random", 10, 20, gen)
    answers, lookups = A.amplify(lambda xs, ks: table[ks, xs], sigma, x, k, quiet)
    assert np.array_equal(answers, table[k, x])
    assert lookups == int(((k == 1) | (k % 2 == 1)).sum())
    for p in (1, 6, 13):
        assert np.array_equal(A.recursive_answers(sigma, np.arange(10), p, quiet), table[p])
    with pytest.raises(ValueError, match="powers start at 1"):
        A.depth(0)


@pytest.mark.parametrize("kind", A.Noise.KINDS)
def test_noise_compounds_with_depth_in_the_tree(kind):
    gen = np.random.default_rng(1)
    sigma = A.permutation(16, gen)
    table = A.powers(sigma, 32)
    xs = np.tile(np.arange(16), 50)
    noise = A.Noise(0.1, kind, 16, 32, gen)
    acc = {p: (A.recursive_answers(sigma, xs, p, noise) == table[p, xs]).mean() for p in (2, 4, 32)}
    assert acc[2] > acc[4] > acc[32] and acc[32] < 0.5 < acc[2]
    if kind == "persistent":   # the same subquestions are always wrong: answers repeat exactly
        assert np.array_equal(A.recursive_answers(sigma, xs, 32, noise), A.recursive_answers(sigma, xs, 32, noise))
    with pytest.raises(ValueError, match="valid kinds"):
        A.Noise(0.1, "gaussian", 16, 32, gen)


@pytest.mark.parametrize("method", ["amplification", "supervised"])
def test_distillation_learns_unseen_powers(method):
    s = A.AmplificationSettings(n=8, max_power=7, hidden=64, rounds=12, steps=20, batch=128, lr=1e-2)
    gen = np.random.default_rng(2)
    sigma = A.permutation(s.n, gen)
    model, cost = A.train(s, sigma, method, gen)
    x, k = A.all_questions(s)
    acc = (model.ask(x, k) == A.powers(sigma, s.max_power)[k, x]).mean()
    assert acc >= 0.9, acc
    assert (cost["labels"] == 0) == (method == "amplification") and len(cost["curve"]) == s.rounds
    with pytest.raises(ValueError, match="valid methods"):
        A.train(s, sigma, "imitation", gen)
