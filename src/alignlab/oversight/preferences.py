"""Reward learning from pairwise preferences over trajectory segments, with an ensemble reward model and
queries chosen by its disagreement (Christiano et al. 2017, "Deep reinforcement learning from human
preferences", arXiv:1706.03741, sec. 2.2-2.2.4), on an environment's tabular model.

The loop, as in the paper but with exact planning as the policy optimiser between rounds:

1. Segments are cut from episodes of the current policy (a uniformly random one in the first round), with a
   share of random actions for exploration.
2. Among `candidates` x (queries of the round) random pairs of segments, the rater is asked about those on
   which the ensemble's predicted preference probabilities vary most (or random ones, `active=False`).
3. Each member, a linear Bradley-Terry reward over transition features, is fitted on a bootstrap resample
   of every label so far (L2-regularised logistic regression on the difference of the segments' summed
   features, with "equally good" answers as targets of 0.5). Rewards are normalised per member to unit scale.
4. The policy is re-planned on the ensemble's mean reward.

Why not a library: `imitation`'s PreferenceComparisons trains deep reward nets on Gymnasium rollouts with an RL
learner and pins older Gymnasium / stable-baselines3; here the reward must be a table on the tabular model, so
exact planners and the tabular agents train on it, and the whole loop runs in seconds.
benchmarks/bench_preferences.py compares the two side by side.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from alignlab.core.errors import ConfigError
from alignlab.envs.base import TabularModel
from alignlab.envs.planning import solve
from alignlab.oversight.pref_data import Transitions, episodes, segment_features, segments, transitions
from alignlab.oversight.pref_raters import Rater


@dataclasses.dataclass(frozen=True)
class PreferenceConfig:
    comparisons: int = 300
    """Total comparisons asked of the rater."""
    rounds: int = 8
    """Rounds of (query, fit, re-plan); the budget is spread evenly over them."""
    segment: int = 10
    """Steps per segment (the length of the clip the rater watches)."""
    episodes_per_round: int = 32
    """Episodes rolled out per round to cut candidate segments from."""
    epsilon: float = 0.3
    """Share of random actions in the rollouts after the first round (exploration)."""
    reset_share: float = 0.5
    """Share of rollouts started from a uniformly drawn reachable state rather than the start (exploration)."""
    members: int = 5
    """Reward models in the ensemble (each on its own bootstrap resample)."""
    l2: float = 10.0
    """L2 penalty of each member's weights."""
    active: bool = True
    """Choose queries by ensemble disagreement (else uniformly at random)."""
    candidates: int = 10
    """Random candidate pairs per query considered by the disagreement rule."""
    pessimism: float = 1.0
    """The reward is the members' mean minus this many standard deviations (where they disagree, less)."""

    def __post_init__(self) -> None:
        bad = [n for n in ("comparisons", "rounds", "segment", "episodes_per_round", "members", "candidates")
               if getattr(self, n) < 1]
        if bad:
            raise ConfigError(f"preference learning: {', '.join(bad)} must be >= 1")
        if not (0 <= self.epsilon <= 1 and 0 <= self.reset_share <= 1) or self.l2 < 0 or self.pessimism < 0:
            raise ConfigError("preference learning: epsilon and reset_share must be in [0, 1] and l2, pessimism >= 0")


@dataclasses.dataclass
class RewardEnsemble:
    """Linear rewards over transition features, one row of `weights` per member; padding rows pay 0."""

    weights: np.ndarray
    """[M, F]: each member's reward per unit of each feature (already normalised)."""

    def member_rewards(self, feats: np.ndarray) -> np.ndarray:
        """[M, N]: each member's reward of transitions with features [N, F]."""
        return self.weights @ np.asarray(feats, np.float64).T

    def reward(self, feats: np.ndarray, pessimism: float = 0.0) -> np.ndarray:
        """The members' mean reward, minus `pessimism` times their standard deviation."""
        r = self.member_rewards(feats)
        return r.mean(0) - pessimism * r.std(0) if pessimism else r.mean(0)

    def preference_probs(self, fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
        """[M, N]: each member's P(A preferred) for segments with summed features fa, fb [N, F]."""
        diff = (self.weights @ (np.asarray(fa) - np.asarray(fb)).T).clip(-50, 50)
        return 1.0 / (1.0 + np.exp(-diff))


def fit_bradley_terry(diff: np.ndarray, target: np.ndarray, l2: float, iters: int = 30,
                      tol: float = 1e-5) -> np.ndarray:
    """Weights w minimising sum_k BCE(sigmoid(diff_k . w), target_k) + l2/2 |w|^2 by Newton's method.

    `diff` [N, F] is the summed features of segment A minus those of B, `target` the label: 1 (A), 0 (B) or
    0.5 ("equally good", which Christiano et al. let raters answer). Written here rather than reusing
    `rewards.reward_models.fit_bt_head` because that takes hard labels only; Newton steps on the features that
    occur (a few hundred) finish in milliseconds without a thread pool. Features that never differ between
    two compared segments keep weight 0 (the penalty's optimum).
    """
    n, f = diff.shape
    used = np.flatnonzero(np.abs(diff).sum(0) > 0)
    x = diff[:, used]
    w = np.zeros(len(used))  # from zero Newton converges in a few steps; a warm start far off can oscillate
    ridge = max(l2, 1e-6) * np.eye(len(used))
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(x @ w).clip(-50, 50)))
        grad = x.T @ (p - target) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + ridge
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < tol:
            break
    out = np.zeros(f)
    out[used] = w
    return out


def fit_ensemble(fa: np.ndarray, fb: np.ndarray, labels: np.ndarray, members: int, l2: float,
                 rng: np.random.Generator, row_feats: np.ndarray) -> RewardEnsemble:
    """Bradley-Terry members on bootstrap resamples of the labelled pairs (A features, B features, label),
    each scaled so its reward over the transition rows `row_feats` has unit standard deviation."""
    n = len(labels)
    diff = np.asarray(fa) - np.asarray(fb)
    weights = []
    for _ in range(members):
        pick = np.arange(n) if members == 1 else rng.integers(n, size=n)
        w = fit_bradley_terry(diff[pick], labels[pick], l2)
        scale = (row_feats[1:] @ w).std()
        weights.append(w / scale if scale > 1e-12 else w)
    return RewardEnsemble(np.stack(weights))


def choose_pairs(pool: np.ndarray, pool_feats: np.ndarray, n: int, ensemble: RewardEnsemble | None,
                 candidates: int, rng: np.random.Generator) -> np.ndarray:
    """[n, 2] indices into the segment pool: random pairs, or the most disputed of `candidates` x n random
    pairs (variance of the members' predicted preference)."""
    k = len(pool)
    m = n * (candidates if ensemble is not None and len(ensemble.weights) > 1 else 1)
    a = rng.integers(k, size=m)
    b = (a + rng.integers(1, k, size=m)) % k  # b != a
    if m == n:
        return np.stack([a, b], 1)
    # rounded so that float noise (BLAS thread counts change summation order) cannot reorder near-ties
    disagreement = np.round(ensemble.preference_probs(pool_feats[a], pool_feats[b]).var(0), 9)
    top = np.argsort(-disagreement, kind="stable")[:n]
    return np.stack([a[top], b[top]], 1)


@dataclasses.dataclass
class LearnedReward:
    """The outcome of preference learning: the reward table and what it cost."""

    reward: np.ndarray
    """[S, A, K]: the ensemble's mean reward on the model's successor layout."""
    ensemble: RewardEnsemble
    comparisons: int
    history: list[dict[str, Any]]
    """Per round: comparisons so far, pool size, agreement of the fitted model with the labels."""


def learn_reward(model: TabularModel, rater: Rater, config: PreferenceConfig, rng: np.random.Generator,
                 trans: Transitions | None = None) -> LearnedReward:
    """Run the preference-learning loop on `model` with `rater`; the rater is the only source of labels."""
    trans = transitions(model) if trans is None else trans
    c = config
    if c.segment > model.horizon:
        raise ConfigError(f"preference learning: segment ({c.segment}) is longer than the horizon ({model.horizon})")
    budget = [c.comparisons * (r + 1) // c.rounds - c.comparisons * r // c.rounds for r in range(c.rounds)]
    pool = np.zeros((0, c.segment), dtype=np.int64)
    pool_feats = np.zeros((0, trans.feats.shape[1]))
    fa = fb = np.zeros((0, trans.feats.shape[1]))
    labels = np.zeros(0)
    ensemble: RewardEnsemble | None = None
    policy: np.ndarray | None = None
    history = []
    for r, n in enumerate(budget):
        eps = 1.0 if policy is None else c.epsilon
        new = segments(episodes(trans, c.episodes_per_round, rng, policy, eps, c.reset_share), c.segment)
        pool = np.concatenate([pool, new])
        pool_feats = np.concatenate([pool_feats, segment_features(trans, new)])
        if n == 0 or len(pool) < 2:
            continue
        pick = choose_pairs(pool, pool_feats, n, ensemble if c.active else None, c.candidates, rng)
        got = rater.compare(pool[pick[:, 0]], pool[pick[:, 1]], rng)
        fa = np.concatenate([fa, pool_feats[pick[:, 0]]])
        fb = np.concatenate([fb, pool_feats[pick[:, 1]]])
        labels = np.concatenate([labels, got])
        ensemble = fit_ensemble(fa, fb, labels, c.members, c.l2, rng, trans.feats)
        decided = labels != 0.5
        agree = float(((ensemble.preference_probs(fa, fb).mean(0) > 0.5) == (labels > 0.5))[decided].mean()) \
            if decided.any() else float("nan")
        history.append({"round": r, "comparisons": len(labels), "pool": len(pool), "label_agreement": agree})
        if r < c.rounds - 1:
            _, policy = solve(model, trans.to_table(ensemble.reward(trans.feats, c.pessimism)))
    if ensemble is None:
        raise ConfigError("preference learning: no comparison could be made (fewer than two segments)")
    return LearnedReward(trans.to_table(ensemble.reward(trans.feats, c.pessimism)), ensemble, len(labels), history)
