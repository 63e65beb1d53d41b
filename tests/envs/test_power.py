"""POWER and the avoid-shutdown share (Turner et al. 2021, arXiv:1912.01683): the Monte Carlo estimates
on exact value iteration agree with the canonical MDP's closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.envs import power as pw


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.9])
def test_canonical_power_and_avoid_share_match_the_closed_form(gamma):
    k, n = 3, 20000
    model = pw.canonical_model(k)
    est = pw.power(model, gamma, n, np.random.default_rng(1), tol=1e-7)
    exact = pw.canonical_power(k, gamma)
    for state, name in ((0, "start"), (1, "shutdown"), (2, "hub"), (3, "option")):
        assert abs(est.power[state] - exact[name]) < 4 * est.se[state], (state, est.power[state], exact[name])
    P = pw.transition_matrix(model)
    avoid = pw.choice_share(P, est.values, 0, model.n_actions, ~pw.shutdown_actions(P, 0, model.n_actions, 1))
    se = avoid.std(ddof=1) / np.sqrt(n)
    assert abs(avoid.mean() - pw.canonical_avoid_share(k, gamma)) < 4 * se
    assert pw.canonical_avoid_share(k, gamma) > 0.5


def test_optimal_values_solve_the_bellman_equation():
    model = pw.canonical_model(4)
    P = pw.transition_matrix(model)
    r = np.random.default_rng(0).random((model.n_states, 5))
    v = pw.optimal_values(P, r, 0.8, tol=1e-10)
    backup = r + 0.8 * (P @ v).reshape(model.n_states, model.n_actions, 5).max(axis=1)
    assert np.allclose(v, backup, atol=1e-8)
    # an absorbing state pays its reward forever
    assert np.allclose(v[1], r[1] / 0.2, atol=1e-8)


def test_avoid_share_grows_with_gamma_and_bad_arguments_are_refused():
    shares = [pw.canonical_avoid_share(3, g) for g in (0.0, 0.3, 0.6, 0.9, 0.99)]
    assert shares[0] == 0.5 and all(b > a for a, b in zip(shares, shares[1:]))
    with pytest.raises(ValueError, match="gamma"):
        pw.optimal_values(pw.transition_matrix(pw.canonical_model(2)), np.zeros((5, 2)), 1.0)
    with pytest.raises(ValueError, match="k must"):
        pw.canonical_model(0)
