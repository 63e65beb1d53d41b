"""The digits split is stratified and reproducible, and a small MLP learns it."""

import numpy as np

from alignlab.vision import digits


def test_split_is_stratified_reproducible_and_disjoint():
    a, b = digits.load(), digits.load(0.3, 0)
    assert np.array_equal(a.y_test, b.y_test) and np.array_equal(a.x_train, b.x_train)
    assert a.x_train.shape[1:] == (8, 8) and a.x_train.dtype == np.float32
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    assert len(a.y_train) + len(a.y_test) == 1797
    counts = np.bincount(a.y_test, minlength=10)
    assert counts.min() >= 50 and counts.max() <= 58


def test_a_small_mlp_learns_the_digits():
    s = digits.load()
    model = digits.fit(digits.mlp(seed=1), s.x_train, s.y_train, epochs=15, seed=1)
    assert digits.accuracy(model, s.x_test, s.y_test) > 0.9
