"""Weak-to-strong: tasks, the confidence loss, performance gap recovered."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alignlab.oversight import weak_to_strong as W


def test_gap_recovered():
    assert W.gap_recovered(0.8, 0.85, 0.9) == pytest.approx(0.5)
    assert W.gap_recovered(0.8, 0.7, 0.9) == pytest.approx(-1.0)
    assert math.isnan(W.gap_recovered(0.9, 0.9, 0.85))


@pytest.mark.parametrize("name", W.TASKS)
def test_tasks_split_disjoint(name):
    t = W.load_task(name, 0)
    parts = np.concatenate([t.a, t.b, t.test])
    assert len(np.unique(parts)) == len(parts) == len(t.y)
    assert len(t.weak_x) == len(t.strong_x) == len(t.y)
    with pytest.raises(ValueError, match="valid tasks"):
        W.load_task("images", 0)


def test_confidence_loss_makes_the_student_more_confident():
    t = W.load_task("tabular", 0)
    soft = np.full((len(t.b), 2), 0.5, dtype=np.float32)
    soft[:, 1] += np.where(t.y[t.b] == 1, 0.1, -0.1)   # unconfident but informative soft labels
    conf = {}
    for alpha in (0.0, 0.75):
        model = W.train(W.strong_model(t, 0, 32), t.strong_x[t.b], soft, epochs=4, seed=0, aux_alpha=alpha)
        conf[alpha] = W.predict(model, t.strong_x[t.test]).max(1).mean()
    assert conf[0.75] > conf[0.0] + 0.1


def test_one_seed_runs():
    out = W.run("tabular", 0, weak_epochs=5, strong_epochs=6, hidden=64)
    assert out["ceiling"] > out["weak"] > 0.8
    assert out["pgr"] == pytest.approx((out["w2s"] - out["weak"]) / (out["ceiling"] - out["weak"]))
    assert {"pgr", "pgr_aux", "w2s_agreement"} <= set(out)
