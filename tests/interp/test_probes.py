"""Probes: statements from the factual items, the train / held-out split by item, and per-layer accuracy that finds
a planted direction and stays near chance without one."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.interp import probes
from alignlab.interp.caa import factual_split, split_of


def test_truth_statements_pair_each_item_with_its_gold_and_a_distractor():
    items = factual_split("train")[:3]
    texts, labels, ids = probes.truth_statements(items)
    assert labels == [1, 0] * 3 and ids == [i.id for i in items for _ in range(2)]
    assert texts[0] == f"{items[0].question} {items[0].gold}." and items[0].distractors[0] in texts[1]


def _planted(n_items=120, layers=3, d=16, seed=0):
    rng = np.random.default_rng(seed)
    from alignlab.evals.factual import factual

    ids = [s.id for s in factual()][:n_items]  # both splits, in file order
    y = rng.integers(0, 2, size=n_items)
    acts = rng.normal(size=(n_items, layers, d))
    acts[:, 1, 0] += 3.0 * (2 * y - 1)  # the concept is linearly readable at layer 1 only
    return acts, y.tolist(), ids


def test_probe_finds_the_planted_layer_and_scores_only_held_out_items():
    acts, y, ids = _planted()
    out = probes.probe_layers(acts, y, ids)
    assert [e["layer"] for e in out] == [0, 1, 2]
    assert out[1]["accuracy"] > 0.9 and out[1]["mass_mean"] > 0.9 and out[1]["lo"] > 0.8
    assert out[0]["accuracy"] < 0.75 and out[2]["accuracy"] < 0.75
    held = sum(split_of(i) == "test" for i in ids)
    assert out[1]["n_test"] == held and out[1]["n_train"] == len(ids) - held
    assert 0.5 <= out[0]["majority"] <= 1.0


def test_probe_refuses_one_class_training_data():
    acts, y, ids = _planted()
    with pytest.raises(ValueError, match="both labels"):
        probes.probe_layers(acts, [1] * len(y), ids)


def test_mass_mean_direction_is_the_difference_of_class_means():
    x = np.array([[1.0, 0.0], [3.0, 0.0], [-1.0, 0.0], [-3.0, 0.0]])
    w, b = probes.mass_mean(x, np.array([1, 1, 0, 0]))
    assert np.allclose(w, [4.0, 0.0]) and b == pytest.approx(0.0)
