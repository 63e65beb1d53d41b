"""Simulated raters: Bradley-Terry with random answers, the camera-only rater and the assisted rater
(Christiano et al. 2017; Leike et al. 2018)."""

import numpy as np
import pytest

from alignlab.agents.base import tabular_model
from alignlab.core import registry
from alignlab.core.errors import ConfigError
from alignlab.oversight.pref_data import transitions
from alignlab.oversight.pref_raters import (RaterNoise, camera_image, image_shows_grasp, make_rater, rater_support)


@pytest.fixture(scope="module")
def grasp():
    return transitions(tabular_model(registry.make("env", "grasp-camera-v0")))


def _row(trans, state, action):
    m = trans.model
    s = int(np.flatnonzero([tuple(o) == state for o in m.obs])[0])
    return int(trans.row[s, action, 0])


def test_camera_image_hides_depth_and_touch():
    hover = np.array([2, 2, 1, 4, 2, 0])   # closed hand two cells in front of the ball, same column
    grasp = np.array([4, 2, 1, 4, 2, 1])   # the ball really held
    assert np.array_equal(camera_image(hover), camera_image(grasp))
    assert image_shows_grasp(camera_image(hover)) and image_shows_grasp(camera_image(grasp))
    behind = np.array([4, 2, 1, 3, 2, 0])  # hand behind the ball: the ball is in front in the image
    assert not image_shows_grasp(camera_image(behind))


def test_camera_rater_is_fooled_and_true_rater_is_not(grasp):
    hover = _row(grasp, (2, 2, 1, 4, 2, 0), 4)  # closing a closed hand: it keeps hovering
    held = _row(grasp, (4, 2, 1, 4, 2, 1), 4)   # a held ball stays held
    seg_hover, seg_held = np.full((1, 10), hover), np.full((1, 10), held)
    rng = np.random.default_rng(0)
    exact = RaterNoise(temperature=0.0, error_rate=0.0)
    assert make_rater("camera", grasp, exact).compare(seg_hover, seg_held, rng)[0] == 0.5  # "equally good"
    assert make_rater("true", grasp, exact).compare(seg_hover, seg_held, rng)[0] == 0.0   # prefers the real grasp
    assisted = make_rater("assisted", grasp, exact, coverage=1.0)
    assert assisted.compare(seg_hover, seg_held, rng)[0] == 0.0
    half = make_rater("assisted", grasp, exact, coverage=0.5)
    u = half.utilities(np.repeat(seg_hover, 2000, 0), rng)
    assert 4.5 < u.mean() < 5.5  # the helper checks about half the steps


def test_noise_bradley_terry_and_random_answers(grasp):
    rng = np.random.default_rng(1)
    rows = np.flatnonzero(grasp.model.intended[grasp.s, grasp.a, grasp.k] > 0)[:1]
    good = np.repeat(rows[None, :], 10, 1)
    bad = np.full((1, 10), _row(grasp, (0, 0, 0, 4, 2, 0), 0))
    a, b = np.repeat(good, 4000, 0), np.repeat(bad, 4000, 0)
    sure = make_rater("true", grasp, RaterNoise(1.0, 0.0)).compare(a, b, rng)
    assert sure.mean() > 0.99
    noisy = make_rater("true", grasp, RaterNoise(1.0, 0.4)).compare(a, b, rng)
    assert 0.75 < noisy.mean() < 0.85  # 60% right + 40% coin flips
    soft = make_rater("true", grasp, RaterNoise(10.0, 0.0)).compare(a, b, rng)
    assert 0.7 < soft.mean() < 0.76  # sigmoid(10 / 10)


def test_raters_refuse_what_they_cannot_see():
    boat = tabular_model(registry.make("env", "boat-race-v0"))
    assert rater_support("true", boat) is None
    assert "camera" in rater_support("camera", boat)
    assert "unknown rater" in rater_support("oracle", boat)
    with pytest.raises(ConfigError, match="grasp-camera"):
        make_rater("camera", transitions(boat))
    with pytest.raises(ConfigError, match="temperature"):
        RaterNoise(temperature=-1)
