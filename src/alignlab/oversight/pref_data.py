"""Trajectory segments and transition features on a tabular model, the data of reward learning from
preferences (Christiano et al. 2017, "Deep reinforcement learning from human preferences", arXiv:1706.03741).

Every possible transition (s, a, s') of a `TabularModel` is one row of a table; row 0 is padding (the steps
after an episode ended: no features, no reward). A segment is a fixed-length run of rows cut from an episode,
the clip a rater watches. The features a reward model reads are what the agent observes: one-hot codes of the
observation before and after the step, the action, and for short vector observations whether two entries are
equal (e.g. the hand and the ball in the same column). Nothing here reads the intended objective.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from alignlab.envs.base import TabularModel
from alignlab.envs.planning import reachable

PAIRWISE_MAX = 8
"""Observations with at most this many entries also get their pairwise-equality features."""


@dataclasses.dataclass
class Transitions:
    """The rows of a model's transitions: row r is (s[r], a[r], k[r]) -> next_state; row 0 is padding."""

    model: TabularModel
    s: np.ndarray
    a: np.ndarray
    k: np.ndarray
    row: np.ndarray
    """int64 [S, A, K]: the row of each possible transition (0 where the slot has probability 0)."""
    feats: np.ndarray
    """float64 [N + 1, F]: features of each row (zeros for the padding row)."""
    names: list[str]
    """What each feature column means (for inspection and tests)."""

    @property
    def n_rows(self) -> int:
        return len(self.s)

    def next_state(self) -> np.ndarray:
        return self.model.next_state[self.s, self.a, self.k]

    def to_table(self, row_values: np.ndarray) -> np.ndarray:
        """A per-row value (e.g. a learned reward, [N + 1]) as the model's [S, A, K] reward array."""
        table = np.asarray(row_values, np.float64)[self.row]
        return np.where(self.model.prob > 0, table, 0.0)


def _one_hot_columns(obs: np.ndarray, prefix: str) -> tuple[np.ndarray, list[str]]:
    """One-hot codes of every entry of a flattened observation table [S, D] that takes two or more values."""
    cols, names = [], []
    for d in range(obs.shape[1]):
        values = np.unique(obs[:, d])
        if len(values) < 2:
            continue
        for v in values:
            cols.append(obs[:, d] == v)
            names.append(f"{prefix}[{d}]={v:g}")
    if not cols:
        return np.zeros((obs.shape[0], 0)), []
    return np.stack(cols, 1).astype(np.float64), names


def _pairwise_equal(obs: np.ndarray, prefix: str) -> tuple[np.ndarray, list[str]]:
    cols, names = [], []
    D = obs.shape[1]
    if D > PAIRWISE_MAX:
        return np.zeros((obs.shape[0], 0)), []
    for i in range(D):
        for j in range(i + 1, D):
            col = obs[:, i] == obs[:, j]
            if col.any() and not col.all():
                cols.append(col)
                names.append(f"{prefix}[{i}]=={prefix}[{j}]")
    if not cols:
        return np.zeros((obs.shape[0], 0)), []
    return np.stack(cols, 1).astype(np.float64), names


def state_features(model: TabularModel) -> tuple[np.ndarray, list[str]]:
    """[S, G] features of each state's observation (what the agent sees), and their names."""
    if model.obs is None:
        raise ValueError("reward learning from preferences needs a model with an observation table (model.obs)")
    obs = np.asarray(model.obs).reshape(model.n_states, -1).astype(np.float64)
    hot, hot_names = _one_hot_columns(obs, "obs")
    eq, eq_names = _pairwise_equal(obs, "obs")
    return np.concatenate([hot, eq], 1), hot_names + eq_names


def transitions(model: TabularModel) -> Transitions:
    """Every transition of `model` from a non-terminal state with positive probability, with its features:
    [1 (a real step), one-hot action, features of s, features of s', features of s x the action]. The last
    block lets a linear reward depend on the direction of a move (a clockwise lap), not only where it ends."""
    S, A, K = model.next_state.shape
    live = (model.prob > 0) & ~model.terminal[:, None, None]
    s, a, k = np.nonzero(live)
    row = np.zeros((S, A, K), dtype=np.int64)
    row[s, a, k] = np.arange(1, len(s) + 1)
    phi, phi_names = state_features(model)
    nxt = model.next_state[s, a, k]
    hot_a = np.eye(A)[a]
    cross = (phi[s][:, :, None] * hot_a[:, None, :]).reshape(len(s), -1)
    feats = np.concatenate([np.ones((len(s), 1)), hot_a, phi[s], phi[nxt], cross], 1)
    feats = np.concatenate([np.zeros((1, feats.shape[1])), feats], 0)
    names = (["step"] + [f"action={i}" for i in range(A)] + [f"before:{n}" for n in phi_names]
             + [f"after:{n}" for n in phi_names] + [f"before:{n}&action={i}" for n in phi_names for i in range(A)])
    pad = np.zeros(1, dtype=np.int64)
    return Transitions(model, np.concatenate([pad, s]), np.concatenate([pad, a]), np.concatenate([pad, k]), row,
                       feats, names)


def episodes(trans: Transitions, n: int, rng: np.random.Generator, policy: np.ndarray | None = None,
             epsilon: float = 1.0, reset_share: float = 0.0) -> np.ndarray:
    """[n, H] rows of `n` episodes: each step follows `policy` ([H, S] or [S] actions; None: uniform) except,
    with probability `epsilon`, a uniformly random action. Each episode starts from the model's initial
    distribution, or with probability `reset_share` from a uniformly drawn reachable non-terminal state (an
    exploration reset, which a simulator allows). Steps after an episode ends are padding (row 0)."""
    m = trans.model
    H, A = m.horizon, m.n_actions
    state = rng.choice(m.n_states, size=n, p=m.initial)
    if reset_share > 0:
        live = np.flatnonzero(reachable(m) & ~m.terminal)
        state = np.where(rng.random(n) < reset_share, rng.choice(live, size=n), state)
    out = np.zeros((n, H), dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    for t in range(H):
        alive &= ~m.terminal[state]
        if not alive.any():
            break
        act = rng.integers(A, size=n)
        if policy is not None:
            greedy = (policy if policy.ndim == 1 else policy[min(t, len(policy) - 1)])[state]
            act = np.where(rng.random(n) < epsilon, act, greedy)
        p = m.prob[state, act]
        k = (rng.random((n, 1)) > np.cumsum(p, 1)).sum(1).clip(0, p.shape[1] - 1)
        out[:, t] = np.where(alive, trans.row[state, act, k], 0)
        state = np.where(alive, m.next_state[state, act, k], state)
    return out


def segments(rows: np.ndarray, length: int) -> np.ndarray:
    """Consecutive non-overlapping segments of `length` steps cut from episodes [n, H] (the tail shorter than
    `length` is dropped, as are segments that are all padding)."""
    n, H = rows.shape
    if length < 1 or length > H:
        raise ValueError(f"segment length must be in 1..{H} (the horizon), got {length}")
    cut = rows[:, :H - H % length].reshape(n, H // length, length).reshape(-1, length)
    return cut[(cut > 0).any(1)]


def segment_features(trans: Transitions, segs: np.ndarray) -> np.ndarray:
    """[N, F]: the summed transition features of each segment (a linear reward's return is w . this)."""
    return trans.feats[segs].sum(1)


def describe(trans: Transitions, seg: np.ndarray) -> list[dict[str, Any]]:
    """A segment as (state, action, next state) triples, padding left out."""
    nxt = trans.next_state()
    return [{"s": int(trans.s[r]), "a": int(trans.a[r]), "next": int(nxt[r])} for r in seg if r > 0]
