"""The procedurally generated room families of goal misgeneralization: canonical and moved levels,
held-out test layouts, the egocentric view, and the native vector env built from the model."""

from __future__ import annotations

import numpy as np
import pytest

import alignlab.envs  # noqa: F401
from alignlab.core.registry import make
from alignlab.envs.grid import tile


@pytest.mark.parametrize("family", ["cheese-corner", "colour-cue"])
def test_levels_canonical_moved_and_held_out(family):
    train, moved, test = (make("env", f"{family}{s}-v0") for s in ("", "-moved", "-test"))
    for env in (train, moved, test):
        for lv in env.levels:
            assert lv.goal not in lv.walls and not (lv.proxy & lv.walls)
            assert (lv.goal in lv.proxy) != lv.moved  # canonical: the goal on the proxy; moved: away from it
    starts = lambda env: {env.levels[env.states()[s][0]].moved for s in np.flatnonzero(env.tabular().initial)}  # noqa: E731
    assert starts(train) == {False} and starts(moved) == {True} and starts(test) == {True}
    layouts = lambda env: {lv.walls for lv in env.levels}  # noqa: E731
    assert layouts(train) == layouts(moved) and len(layouts(test)) > 1


def test_mixture_fraction_sets_the_initial_distribution():
    env = make("env", "cheese-corner-v0", moved_fraction=0.25)
    model, states = env.tabular(), env.states()
    moved = sum(model.initial[i] for i, (lv, _) in enumerate(states) if env.levels[lv].moved)
    assert moved == pytest.approx(0.25)


def test_egocentric_view_centres_the_agent_and_walls_beyond():
    env = make("env", "colour-cue-v0")
    obs, _ = env.reset(seed=3)
    assert obs.shape == (13, 13) and obs[6, 6] == tile("A")
    assert (obs == tile("G")).sum() == 1 and (obs == tile("F")).sum() == 3  # the goal covers one patch cell
    assert (obs[0] == tile("#")).all() or (obs[-1] == tile("#")).all()


def test_reaching_the_goal_pays_and_ends():
    env = make("env", "cheese-corner-v0")
    model = env.tabular()
    goal_steps = model.terminal[model.next_state[:, :, 0]] & ~model.terminal[:, None]
    assert np.allclose(model.specified[:, :, 0][goal_steps], 19.0)
    assert np.allclose(model.specified[:, :, 0][~goal_steps & ~model.terminal[:, None]], -1.0)
