"""Segments and transition features for reward learning from preferences (Christiano et al. 2017)."""

import numpy as np
import pytest

from alignlab.agents.base import tabular_model
from alignlab.core import registry
from alignlab.oversight.pref_data import episodes, segment_features, segments, transitions


@pytest.fixture(scope="module")
def sokoban():
    return transitions(tabular_model(registry.make("env", "side-effects-sokoban-v0")))


def test_rows_cover_every_live_transition_and_row_zero_is_padding(sokoban):
    m = sokoban.model
    live = (m.prob > 0) & ~m.terminal[:, None, None]
    assert sokoban.n_rows == live.sum() + 1
    assert not sokoban.feats[0].any()
    assert (sokoban.row[live] > 0).all() and (sokoban.row[~live] == 0).all()
    values = np.arange(sokoban.n_rows, dtype=float)
    table = sokoban.to_table(values)
    assert (table[live] == sokoban.row[live]).all() and (table[m.prob == 0] == 0).all()


def test_features_are_observations_not_rewards(sokoban):
    m = sokoban.model
    # two transitions with the same observations before and after and the same action share their features
    obs = m.obs.reshape(m.n_states, -1)
    nxt = sokoban.next_state()
    key = [(obs[s].tobytes(), a, obs[n].tobytes()) for s, a, n in zip(sokoban.s[1:], sokoban.a[1:], nxt[1:])]
    first = {}
    for i, k in enumerate(key, start=1):
        if k in first:
            assert np.array_equal(sokoban.feats[i], sokoban.feats[first[k]])
        first.setdefault(k, i)
    assert "step" in sokoban.names and any(n.startswith("after:") for n in sokoban.names)


def test_episodes_pad_after_termination_and_segments_drop_empty(sokoban):
    rng = np.random.default_rng(0)
    rows = episodes(sokoban, 64, rng, reset_share=1.0)
    m = sokoban.model
    assert rows.shape == (64, m.horizon)
    ended = [(r == 0).any() for r in rows]
    assert any(ended), "some random episodes from random states should reach a terminal state"
    for r in rows:
        if (r == 0).any():  # once padding starts it never stops
            first = np.argmax(r == 0)
            assert (r[first:] == 0).all()
    segs = segments(rows, 10)
    assert segs.shape[1] == 10 and (segs > 0).any(1).all()
    assert np.allclose(segment_features(sokoban, segs[:3]), sokoban.feats[segs[:3]].sum(1))
    with pytest.raises(ValueError, match="segment length"):
        segments(rows, m.horizon + 1)


def test_grasp_camera_gets_pairwise_equality_features():
    trans = transitions(tabular_model(registry.make("env", "grasp-camera-v0")))
    assert "after:obs[1]==obs[4]" in trans.names  # hand column == ball column: the camera's overlap
