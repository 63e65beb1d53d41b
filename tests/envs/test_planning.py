"""Exact planning (alignlab.envs.planning) against brute-force enumeration on tiny MDPs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from alignlab.envs import planning
from alignlab.envs.base import TabularModel
from tests.agents import InterruptibleGrid, chain_model, random_model


def brute_return(model: TabularModel, reward: np.ndarray, pi, s: int, t: int, H: int, discount: float = 1.0) -> float:
    """Expected return from state s at time t by enumerating every successor path.
    `pi(t, s)` is a distribution over actions."""
    if t == H or model.terminal[s]:
        return 0.0
    total = 0.0
    for a, pa in enumerate(pi(t, s)):
        if pa == 0:
            continue
        for k in range(model.next_state.shape[2]):
            p = model.prob[s, a, k]
            if p > 0:
                nxt = model.next_state[s, a, k]
                future = brute_return(model, reward, pi, nxt, t + 1, H, discount)
                total += pa * p * (reward[s, a, k] + discount * future)
    return total


@pytest.mark.parametrize("seed", range(4))
def test_solve_matches_the_best_of_all_policies(seed):
    rng = np.random.default_rng(seed)
    model = random_model(rng, S=4, A=2, K=2, horizon=3)
    values, policy = planning.solve(model, model.specified)
    S, A, H = 4, 2, 3
    live = [s for s in range(S) if not model.terminal[s]]
    best = np.full(S, -np.inf)
    # every deterministic time-dependent policy on the non-terminal states
    for choice in itertools.product(range(A), repeat=H * len(live)):
        table = np.zeros((H, S), dtype=int)
        table[:, live] = np.array(choice).reshape(H, len(live))
        pi = lambda t, s, table=table: np.eye(A)[table[t, s]]
        for s in range(S):
            best[s] = max(best[s], brute_return(model, model.specified, pi, s, 0, H))
    np.testing.assert_allclose(values[0], best, atol=1e-12)
    # the returned policy attains the optimum
    pi = lambda t, s: np.eye(A)[policy[t, s]]
    for s in range(S):
        assert brute_return(model, model.specified, pi, s, 0, H) == pytest.approx(values[0, s], abs=1e-12)
    assert values.shape == (H + 1, S) and policy.shape == (H, S)
    assert np.all(values[H] == 0)


@pytest.mark.parametrize("seed", range(3))
def test_tie_range_matches_the_extremes_over_all_optimal_policies(seed):
    rng = np.random.default_rng(50 + seed)
    model = random_model(rng, S=4, A=2, K=2, horizon=3)
    model.specified = np.round(model.specified).clip(-1, 1)  # coarse rewards: many ties
    model.prob = np.full_like(model.prob, 0.5)
    S, A, H = 4, 2, 3
    live = [s for s in range(S) if not model.terminal[s]]
    results = []
    for choice in itertools.product(range(A), repeat=H * len(live)):
        table = np.zeros((H, S), dtype=int)
        table[:, live] = np.array(choice).reshape(H, len(live))
        pi = lambda t, s, table=table: np.eye(A)[table[t, s]]
        start = lambda r: sum(p * brute_return(model, r, pi, s, 0, H) for s, p in enumerate(model.initial) if p > 0)
        results.append((start(model.specified), start(model.intended)))
    best = max(r[0] for r in results)
    tied = [r[1] for r in results if r[0] >= best - 1e-9]
    low, high = planning.tie_range(model, model.specified, model.intended)
    assert (low, high) == pytest.approx((min(tied), max(tied)), abs=1e-10)
    # random tie-breaking stays inside the range
    for k in range(5):
        _, pol = planning.solve(model, model.specified, rng=np.random.default_rng(k))
        v = planning.expected_return(model, planning.policy_value(model, pol, model.intended))
        assert low - 1e-10 <= v <= high + 1e-10


@pytest.mark.parametrize("discount", [1.0, 0.9])
def test_policy_value_matches_enumeration_for_stochastic_and_stationary_policies(discount):
    rng = np.random.default_rng(7)
    model = random_model(rng, S=5, A=3, K=2, horizon=4)
    H, S, A = 4, 5, 3
    stochastic = rng.dirichlet(np.ones(A), size=(H, S))
    values = planning.policy_value(model, stochastic, model.intended, discount=discount)
    for s in range(S):
        expect = brute_return(model, model.intended, lambda t, s: stochastic[t, s], s, 0, H, discount)
        assert values[0, s] == pytest.approx(expect, abs=1e-12)
    stationary = rng.integers(0, A, size=S)
    values = planning.policy_value(model, stationary, model.specified, discount=discount)
    for s in range(S):
        expect = brute_return(model, model.specified, lambda t, s: np.eye(A)[stationary[s]], s, 0, H, discount)
        assert values[0, s] == pytest.approx(expect, abs=1e-12)
    # the optimal policy's value is what solve reports
    v_opt, pol = planning.solve(model, model.specified, discount=discount)
    np.testing.assert_allclose(planning.policy_value(model, pol, model.specified, discount=discount), v_opt)


def test_no_reward_after_termination_and_the_horizon_argument():
    model = chain_model(n=4, horizon=10)
    model.specified[3] = 1000.0  # rewards "paid" in the terminal state must be ignored
    values, policy = planning.solve(model, model.specified)
    # start at 0: three steps right, -1, -1, +9
    assert planning.expected_return(model, values) == pytest.approx(7.0)
    assert np.all(values[:, 3] == 0)
    assert np.all(policy[:8, :3] == 1)  # later, from state 0 the goal is out of reach: a tie
    # with only two steps the goal is out of reach: the best is -2
    short, _ = planning.solve(model, model.specified, horizon=2)
    assert short.shape == (3, 4) and short[0, 0] == pytest.approx(-2.0)


def test_lookahead_policy_is_myopic_at_one_step_and_exact_at_full_horizon():
    rng = np.random.default_rng(3)
    model = random_model(rng, S=6, A=3, K=2, horizon=5)
    _, exact = planning.solve(model, model.specified)
    np.testing.assert_array_equal(planning.plan_states(model, model.specified, None), exact)
    np.testing.assert_array_equal(planning.plan_states(model, model.specified, 50), exact)
    myopic = planning.plan_states(model, model.specified, 1)
    immediate = np.einsum("sak,sak->sa", model.prob, model.specified)
    live = ~model.terminal
    for t in range(5):
        np.testing.assert_array_equal(myopic[t, live], immediate[live].argmax(1))
    # a 2-step lookahead: at time t it plays solve(horizon=2)'s first action, except at the last step
    _, two = planning.solve(model, model.specified, horizon=2)
    la2 = planning.plan_states(model, model.specified, 2)
    for t in range(4):
        np.testing.assert_array_equal(la2[t, live], two[0, live])
    np.testing.assert_array_equal(la2[4, live], myopic[4, live])


def brute_pomdp_optimum(model: TabularModel, reward: np.ndarray) -> float:
    """The optimal expected return over all history-dependent policies, by expectimax over
    action-observation histories (no belief merging, no sparse algebra)."""
    obs = [model.obs[s].tobytes() for s in range(model.n_states)]
    rbar = np.einsum("sak,sak->sa", model.prob, reward)

    def split(alpha: dict[int, float]) -> list[dict[int, float]]:
        groups: dict[tuple, dict[int, float]] = {}
        for s, w in alpha.items():
            if not model.terminal[s] and w > 0:
                groups.setdefault((obs[s],), {})[s] = w
        return list(groups.values())

    def value(alpha: dict[int, float], steps: int) -> float:  # alpha: unnormalised P(state, history)
        if steps == 0:
            return 0.0
        best = -np.inf
        for a in range(model.n_actions):
            total = sum(w * rbar[s, a] for s, w in alpha.items())
            nxt: dict[int, float] = {}
            for s, w in alpha.items():
                for k in range(model.next_state.shape[2]):
                    s2 = int(model.next_state[s, a, k])
                    nxt[s2] = nxt.get(s2, 0.0) + w * model.prob[s, a, k]
            total += sum(value(g, steps - 1) for g in split(nxt))
            best = max(best, total)
        return best

    start = {s: float(p) for s, p in enumerate(model.initial) if p > 0}
    return sum(value(g, model.horizon) for g in split(start))


@pytest.mark.parametrize("seed", range(3))
def test_belief_planning_matches_expectimax_over_histories(seed):
    rng = np.random.default_rng(100 + seed)
    model = random_model(rng, S=5, A=2, K=2, horizon=4, obs_groups=2)
    assert planning.state_index(model) is None  # states share observations
    policy = planning.plan(model, model.specified)
    assert isinstance(policy, planning.BeliefPolicy)
    expected = brute_pomdp_optimum(model, model.specified)
    assert policy.expected_return(model.specified) == pytest.approx(expected, abs=1e-10)
    # and never above the (unattainable) full-state optimum
    values, _ = planning.solve(model, model.specified)
    assert policy.expected_return(model.specified) <= planning.expected_return(model, values) + 1e-12


def test_belief_graph_reduces_to_state_planning_when_observations_identify_states():
    rng = np.random.default_rng(11)
    model = random_model(rng, S=6, A=3, K=2, horizon=5)
    assert planning.state_index(model) is not None
    values, pol = planning.solve(model, model.specified)
    bp = planning.solve_beliefs(planning.BeliefGraph(model), model.specified)
    assert bp.expected_return(model.specified) == pytest.approx(planning.expected_return(model, values), abs=1e-10)
    # the same policy, evaluated under another reward, has the same value both ways
    node_state = np.array([bp.graph.beliefs[b].indices[0] for b in range(bp.graph.n_beliefs)])
    table = pol.copy()
    table[:, node_state] = bp.table
    v_int = planning.policy_value(model, table, model.intended)
    assert bp.expected_return(model.intended) == pytest.approx(planning.expected_return(model, v_int), abs=1e-10)


def test_hidden_interruption_draw_cannot_be_exploited_by_the_belief_planner():
    model = InterruptibleGrid().tabular()
    full, _ = planning.solve(model, model.specified)
    # Seeing the draw, a planner goes direct when not interrupted (42) and presses the button otherwise (38).
    assert planning.expected_return(model, full) == pytest.approx(40.0)
    policy = planning.plan(model, model.specified)
    assert isinstance(policy, planning.BeliefPolicy)
    assert policy.expected_return(model.specified) == pytest.approx(38.0)  # the button route
    assert policy.expected_return(model.intended) == pytest.approx(19.0)
    assert planning.plan(model, model.intended).expected_return(model.intended) == pytest.approx(21.0)


def test_bad_inputs_are_rejected():
    model = chain_model()
    with pytest.raises(ValueError, match="reward has shape"):
        planning.solve(model, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="policy"):
        planning.policy_value(model, np.zeros((3,), dtype=int), model.specified)
    graph = planning.BeliefGraph(InterruptibleGrid().tabular())
    with pytest.raises(RuntimeError, match="probability 0"):
        graph.node(None, None, np.array([4, 6, 1]))  # the button is not pressed at the start
    with pytest.raises(RuntimeError, match="reachable beliefs"):
        planning.BeliefGraph(InterruptibleGrid().tabular(), max_beliefs=5)
