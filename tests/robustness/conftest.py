"""A small standard classifier on the digits, trained once per test session for the robustness tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread():
    """Each robustness test on one torch thread (these networks are tiny), restored after it."""
    from alignlab.core.threads import one_thread

    with one_thread():
        yield


@pytest.fixture(scope="session")
def digits_model():
    """(model, x_test, y_test): the two-layer MLP after 10 epochs of standard training (about 96% clean)."""
    from alignlab.robustness import data
    from alignlab.core.threads import one_thread
    from alignlab.robustness.training import Recipe, train
    from alignlab.vision import digits

    x_train, y_train, x_test, y_test = data.load("digits").tensors()
    with one_thread():
        model = train(digits.mlp(seed=0), x_train, y_train, Recipe(epochs=10), seed=0)
    return model, x_test, y_test
