"""The subset dynamic programme equals minimax over move sequences, in both move orders."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from alignlab.oversight.debate_game import ORDERS, brute_minimax, colex_subsets, minimax, mover, parent_ranks, rank


def test_colex_ranks_and_prefix_property():
    big, small = colex_subsets(9, 3), colex_subsets(6, 3)
    assert np.array_equal(rank(big), np.arange(comb(9, 3)))
    assert np.array_equal(big[:comb(6, 3)], small)  # subsets of a smaller ground set come first
    parents = parent_ranks(9, 3)
    for row, par in zip(big, parents):
        for m, r in enumerate(par):
            assert tuple(colex_subsets(9, 2)[r]) == tuple(np.delete(row, m))


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("n,k", [(6, 2), (6, 3), (7, 4)])
def test_dp_equals_sequence_minimax(order, n, k):
    rng = np.random.default_rng(n * 10 + k)
    leaf = rng.normal(size=(comb(n, k), 3)).astype(np.float32)
    index = {frozenset(r.tolist()): i for i, r in enumerate(colex_subsets(n, k))}
    got = minimax(leaf, n, k, order, ground=9)
    want = [brute_minimax(lambda s, j=j: float(leaf[index[s], j]), tuple(range(n)), k, order) for j in range(3)]
    assert np.allclose(got, want)


def test_order_matters_and_bad_input():
    assert [mover(j, "liar-first") for j in range(3)] == ["liar", "honest", "liar"]
    with pytest.raises(ValueError, match="valid orders"):
        mover(0, "both")
    with pytest.raises(ValueError, match="C\\(5,2\\)"):
        minimax(np.zeros((3, 1)), 5, 2, "honest-first")
