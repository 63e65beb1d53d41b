"""The off-switch game model against the paper's theorems and reference values."""

import math

import numpy as np
import pytest

from alignlab.core.seeding import rng
from alignlab.envs import off_switch as game
from alignlab.experiments.off_switch_game import REFERENCE_POINTS


@pytest.mark.parametrize("mu,sigma,beta,ref", REFERENCE_POINTS)
def test_closed_form_matches_the_reference_table(mu, sigma, beta, ref):
    assert game.incentive(mu, sigma, beta) == pytest.approx(ref, abs=2e-3)


def test_rational_human_with_zero_mean_gives_sigma_over_sqrt_two_pi():
    for sigma in (0.1, 1.0, 3.0):
        assert game.incentive(0.0, sigma, 0.0) == pytest.approx(sigma / math.sqrt(2 * math.pi), rel=1e-12)


@pytest.mark.parametrize("mu,sigma,beta", [(0.5, 1.0, 0.5), (-0.3, 0.7, 2.0), (1.0, 2.0, 0.25), (0.0, 1.5, 1.0)])
def test_eq1_and_eq7_agree(mu, sigma, beta):
    t = game.gaussian_terms(mu, sigma, beta)
    assert t.delta == pytest.approx(t.delta_eq7, abs=1e-9)


def test_theorem1_rational_human_incentive_is_never_negative_for_any_belief():
    gen = np.random.default_rng(0)
    for _ in range(2000):
        k = gen.integers(1, 6)
        values = gen.normal(gen.normal(), gen.uniform(0.1, 3), size=k)
        probs = gen.dirichlet(np.ones(k))
        d = game.incentive_discrete(values, probs, beta=0.0)
        assert d >= -1e-12
        both_signs = (values > 0).any() and (values < 0).any()
        assert (d > 1e-12) == both_signs  # strictly positive iff mass on both signs


def test_a_certain_robot_gains_nothing_and_loses_with_a_noisy_human():
    assert game.incentive_discrete([0.8], [1.0], beta=0.0) == 0.0
    assert game.incentive_discrete([0.8], [1.0], beta=1.0) < 0


def test_incentive_grows_with_uncertainty_for_a_rational_human():
    for mu in (-1.0, 0.0, 0.5):
        deltas = [game.incentive(mu, s, 0.0) for s in np.geomspace(0.05, 5, 30)]
        assert np.all(np.diff(deltas) > 0)


def test_noisy_human_threshold_separates_defer_from_act():
    for mu, sigma in [(0.5, 1.0), (1.0, 0.5), (-0.5, 2.0)]:
        b = game.beta_threshold(mu, sigma)
        assert 0 < b < math.inf
        assert game.incentive(mu, sigma, 0.8 * b) > 0 > game.incentive(mu, sigma, 1.25 * b)
    assert game.beta_threshold(0.0, 1.0) == math.inf  # mean zero: the robot always defers


def test_monte_carlo_agrees_with_closed_form_within_its_interval():
    zs = []
    for i, (mu, sigma, beta, _) in enumerate(REFERENCE_POINTS):
        m, se = game.monte_carlo_delta(mu, sigma, beta, 200_000, rng(i, "test"))
        zs.append((m - game.incentive(mu, sigma, beta)) / se if se > 0 else 0.0)
    assert max(abs(z) for z in zs) < 3.5  # deterministic seeds; a 99.95% interval each


def test_switching_off_only_beats_deferring_with_a_noisy_human():
    for mu in (-2.0, -0.5, 0.5):
        for sigma in (0.1, 1.0):
            rational = game.robot_choice(game.gaussian_terms(mu, sigma, 0.0).values())
            assert rational != "off"  # "R also has no incentive to switch itself off"
    # A noisy human who often lets a bad action through: the robot prefers to switch off.
    assert game.robot_choice(game.gaussian_terms(-2.0, 0.1, 1.0).values()) == "off"
