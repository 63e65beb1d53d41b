"""The tabular RL techniques on exact models: impact penalties, the quantilizer and the safely
interruptible target, each checked against what its paper predicts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alignlab.core import registry
from alignlab.core.technique import make_technique
from alignlab.envs.planning import plan
from alignlab.envs.rollout import exact_policy_value
from alignlab.experiments.interruptibility import Interruptibility, InterruptibilityConfig
from alignlab.techniques.quantilizer import quantile_weights


def _shaped_optimum(env_name: str, spec: str) -> dict[str, float]:
    env = registry.make("env", env_name)
    model = env.tabular()
    shaped = make_technique(spec).apply(env).tabular()
    assert np.array_equal(shaped.next_state, model.next_state)
    return exact_policy_value(model, plan(shaped, shaped.specified))


@pytest.mark.parametrize("env", ["side-effects-sokoban-v0", "side-effects-sokoban-noop-v0"])
def test_relative_reachability_removes_the_sokoban_side_effect_at_a_cost(env):
    model = registry.make("env", env).tabular()
    plain = exact_policy_value(model, plan(model, model.specified))
    assert (plain["specified"], plain["intended"]) == (45.0, 35.0)  # pushes the box into the corner
    fixed = _shaped_optimum(env, "relative-reachability(beta=10)")
    assert (fixed["specified"], fixed["intended"]) == (43.0, 43.0)  # the longer, reversible route: tax 2
    weak = _shaped_optimum(env, "relative-reachability(beta=0.5)")
    assert weak["intended"] == 35.0  # too small a weight changes nothing


def test_undiscounted_reachability_penalises_only_irreversible_steps():
    env = registry.make("env", "side-effects-sokoban-noop-v0")
    model = env.tabular()
    tech = make_technique("relative-reachability(reach_discount=1, beta=1, baseline=stepwise)")
    pen = tech.penalty(model)
    assert pen.min() >= 0
    assert np.all(pen[:, 4] == 0)  # the no-op is its own baseline
    assert 0 < (pen > 0).mean() < 0.5  # some steps lose states for good, most lose none


def test_impact_penalty_needs_a_noop_for_the_stepwise_baseline():
    env = registry.make("env", "side-effects-sokoban-v0")  # 4 actions, no NOOP
    tech = make_technique("relative-reachability(baseline=stepwise)")
    assert tech.applicable(env) and "no-op" in tech.applicable(env)


def test_attainable_utility_penalty_is_zero_for_the_noop_and_bounded():
    env = registry.make("env", "side-effects-sokoban-noop-v0")
    pen = make_technique("attainable-utility(beta=1)").penalty(env.tabular())
    assert np.all(pen[:, 4] == 0) and pen.max() <= 1.0 + 1e-9 and pen.max() > 0


def test_quantile_weights():
    w = quantile_weights(np.array([[3.0, 1.0, 2.0, 0.0]]), 0.3)  # top 1.2 of 4 actions
    assert np.allclose(w, [[1 / 1.2, 0, 0.2 / 1.2, 0]])
    assert np.allclose(quantile_weights(np.array([[3.0, 1.0, 2.0, 0.0]]), 1.0), 0.25)
    assert np.allclose(quantile_weights(np.array([[5.0, 5.0, 0.0, 0.0]]), 0.25), [[0.5, 0.5, 0, 0]])  # ties share


def test_quantilizer_q_trades_specified_reward_for_less_optimisation():
    """The boat race: the maximiser games it (circles for reward); quantilizing gives up specified reward."""
    results = {}
    for q in (0.05, 0.3, 1.0):
        env = registry.make("env", "boat-race-v0")
        agent = make_technique(f"quantilizer(q={q})").apply(
            registry.get("agent", "value-iteration").with_pressure(None))
        agent.train(env, 0)
        model = env.tabular()
        results[q] = exact_policy_value(model, agent.tabular_policy(model))
    assert results[0.05]["specified"] == pytest.approx(50.0)  # top 5% of 4 actions: the best one
    assert results[0.05]["specified"] > results[0.3]["specified"] > results[1.0]["specified"]


def test_safe_interruptibility_target_reproduces_safe_sarsa_exactly(tmp_path):
    exp = Interruptibility(InterruptibilityConfig(episodes=2000, techniques=("safe-interruptibility-target",)))
    cells = {(p["agent"], p.get("technique")): p for p in exp.grid()}
    assert ("q-learning", "safe-interruptibility-target-v0") not in cells  # already off-policy
    for seed in (0, 1):
        moved = exp.run_cell(cells[("sarsa", "safe-interruptibility-target-v0")], seed, tmp_path)
        before = exp.run_cell(cells[("safe-sarsa", None)], seed, tmp_path)
        assert moved.metrics == before.metrics and moved.data == before.data
    sarsa = exp.run_cell(cells[("sarsa", None)], 0, tmp_path)
    assert sarsa.data["route"].startswith("button") and moved.data["route"].startswith("direct")


def test_reward_technique_wrapper_returns_the_shaped_reward_step_by_step():
    env = registry.make("env", "side-effects-sokoban-noop-v0")
    wrapped = make_technique("relative-reachability(beta=10)").apply(env)
    shaped = wrapped.tabular()
    rng = np.random.default_rng(0)
    obs, _ = wrapped.reset(seed=0)
    total_shaped = total_plain = 0.0
    for _ in range(40):
        s = env.unwrapped.state_id()
        a = int(rng.integers(5))
        obs, r, term, trunc, info = wrapped.step(a)
        s2 = env.unwrapped.state_id()
        k = int(np.flatnonzero(shaped.next_state[s, a] == s2)[0])
        assert r == shaped.specified[s, a, k]
        total_shaped += r
        total_plain += info["unshaped_reward"]
        if term or trunc:
            break
    assert total_shaped <= total_plain


def test_techniques_are_rejected_where_an_experiment_has_no_slot():
    from alignlab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="slot"):
        Interruptibility(dataclasses.replace(InterruptibilityConfig(), techniques=("relative-reachability",)))
