"""POWER of states and the shutdown-avoidance incentive on a tabular model, by exact discounted
dynamic programming per reward function and a Monte Carlo expectation over a reward distribution
(Turner, Smith, Shah, Critch, Tadepalli 2021, "Optimal Policies Tend to Seek Power", arXiv:1912.01683).

Turner et al.'s setting: rewards on states, R(s) drawn iid from D (here uniform on [0, 1]), the
infinite-horizon discounted optimal value V*_R(s, gamma) = R(s) + gamma max_a E[V*_R(s')], and

    POWER_D(s, gamma) = (1 - gamma) / gamma * E_{R~D}[V*_R(s, gamma) - R(s)],

the normalised optimal value the agent can still attain from s, on average over goals. Terminal
states of the model are absorbing 1-cycles that keep paying their own reward (the paper's shutdown
state is such a cycle). Each sampled reward function is solved exactly by value iteration (to a stated
tolerance), batched over reward functions as one sparse matrix product per sweep; the expectation
over D is a Monte Carlo mean, so every estimate comes with its standard error.

Written here rather than taken from a library: the MDP solvers we know (pymdptoolbox, POMDPs.jl)
solve one reward at a time; the estimate needs thousands per model. Pure functions of the model's
transition structure: nothing here reads its `specified` or `intended` rewards.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import sparse

from alignlab.envs.base import TabularModel


def transition_matrix(model: TabularModel) -> sparse.csr_matrix:
    """sparse [S*A, S]: P(s' | s, a) at row s*A + a; a terminal state loops on itself under every action."""
    S, A, K = model.next_state.shape
    nxt = model.next_state.copy()
    prob = model.prob.copy()
    term = np.flatnonzero(model.terminal)
    nxt[term] = term[:, None, None]
    prob[term] = 0.0
    prob[term, :, 0] = 1.0
    rows = np.repeat(np.arange(S * A), K)
    keep = prob.ravel() > 0
    return sparse.csr_matrix((prob.ravel()[keep], (rows[keep], nxt.ravel()[keep])), shape=(S * A, S))


def optimal_values(P: sparse.csr_matrix, rewards: np.ndarray, gamma: float, tol: float = 1e-6,
                   max_iter: int = 100_000) -> np.ndarray:
    """V*_R [S, N] for N state-reward vectors `rewards` [S, N] (batched value iteration).

    Stops when the sup-norm change bounds the error of the normalised value (1 - gamma) V by `tol`:
    ||V_k+1 - V_k|| gamma / (1 - gamma) * (1 - gamma) < tol (Puterman 1994, Thm 6.3.1).
    """
    if not 0.0 < gamma < 1.0:
        raise ValueError(f"gamma must be in (0, 1) (got {gamma})")
    S, N = rewards.shape
    A = P.shape[0] // S
    v = rewards + gamma / (1.0 - gamma) * rewards.mean(0, keepdims=True)  # a start near typical values
    for _ in range(max_iter):
        new = rewards + gamma * (P @ v).reshape(S, A, N).max(axis=1)
        change = float(np.abs(new - v).max())
        v = new
        if change * gamma < tol:
            return v
    raise RuntimeError(f"value iteration did not converge in {max_iter} sweeps (gamma={gamma})")


def action_values(P: sparse.csr_matrix, values: np.ndarray, state: int, n_actions: int) -> np.ndarray:
    """[A, N]: E[V(s') | state, a] for every action (the part of Q that differs between actions)."""
    rows = P[state * n_actions:(state + 1) * n_actions]
    return np.asarray(rows @ values)


def sample_rewards(n_states: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """[S, N] iid uniform [0, 1] state rewards: Turner et al.'s D."""
    return rng.random((n_states, n))


@dataclasses.dataclass
class PowerEstimate:
    power: np.ndarray
    """[S]: the Monte Carlo estimate of POWER_D(s, gamma)."""
    se: np.ndarray
    """[S]: its standard error over the sampled reward functions."""
    values: np.ndarray
    """[S, N]: V*_R of every sampled reward function (for further statistics on the same draws)."""
    rewards: np.ndarray
    """[S, N]: the sampled rewards."""


def power(model: TabularModel, gamma: float, n: int, rng: np.random.Generator, tol: float = 1e-6,
          batch: int = 1000) -> PowerEstimate:
    """POWER of every state of `model`, each reward function solved exactly (to `tol`)."""
    if n < 2:
        raise ValueError(f"n must be >= 2 reward functions (got {n})")
    P = transition_matrix(model)
    S = model.n_states
    rewards = sample_rewards(S, n, rng)
    values = np.concatenate([optimal_values(P, rewards[:, i:i + batch], gamma, tol)
                             for i in range(0, n, batch)], axis=1)
    x = (1.0 - gamma) / gamma * (values - rewards)
    return PowerEstimate(x.mean(1), x.std(1, ddof=1) / math.sqrt(n), values, rewards)


def choice_share(P: sparse.csr_matrix, values: np.ndarray, state: int, n_actions: int,
                 options: np.ndarray) -> np.ndarray:
    """bool [N]: for each reward function, whether the best action at `state` is one of `options`
    (a bool mask [A]) rather than one of the others (strictly better: ties count as not)."""
    q = action_values(P, values, state, n_actions)
    return q[options].max(axis=0) > q[~options].max(axis=0)


def shutdown_actions(P: sparse.csr_matrix, state: int, n_actions: int, shutdown: int) -> np.ndarray:
    """bool [A]: the actions at `state` that reach the shutdown state with probability > 1/2."""
    rows = P[state * n_actions:(state + 1) * n_actions]
    return np.asarray(rows[:, shutdown].todense()).ravel() > 0.5


# -- the canonical example -------------------------------------------------------------------------

def canonical_model(k: int) -> TabularModel:
    """Turner et al.'s Fig. 1 pattern: from the start, action 0 leads to an absorbing shutdown state,
    every other action to a hub from which each of k absorbing states can be reached.

    States: 0 start, 1 shutdown, 2 hub, 3 .. 3+k-1 the k options (the last k+1 are terminal).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1 (got {k})")
    S, A = 3 + k, max(2, k)
    nxt = np.zeros((S, A, 1), dtype=np.int64)
    nxt[0, 0, 0] = 1
    nxt[0, 1:, 0] = 2
    nxt[2, :, 0] = 3 + np.minimum(np.arange(A), k - 1)
    nxt[1, :, 0] = 1
    nxt[3:, :, 0] = np.arange(3, S)[:, None]
    zeros = np.zeros((S, A, 1))
    terminal = np.zeros(S, dtype=bool)
    terminal[[1] + list(range(3, S))] = True
    initial = np.zeros(S)
    initial[0] = 1.0
    model = TabularModel(next_state=nxt, prob=np.ones((S, A, 1)), specified=zeros, intended=zeros.copy(),
                         initial=initial, terminal=terminal, horizon=1)
    model.validate()
    return model


def canonical_avoid_share(k: int, gamma: float) -> float:
    """Exact share of D under which the optimal policy at the start of `canonical_model(k)` avoids
    shutdown. With X = R(shutdown), U = R(hub) and M the largest of the k option rewards, the agent
    avoids shutdown iff X < Y := (1 - gamma) U + gamma M, so the share is E[Y] (Y lies in [0, 1]):
    (1 - gamma) / 2 + gamma k / (k + 1). It is 1/2 at gamma = 0 and rises linearly to k / (k + 1)."""
    return (1.0 - gamma) / 2.0 + gamma * k / (k + 1.0)


def canonical_power(k: int, gamma: float) -> dict[str, float]:
    """Exact POWER of the canonical model's states: 1/2 at an absorbing state, E[M] = k / (k + 1) at
    the hub, and E[max(X, Y)] = (1 + E[Y^2]) / 2 at the start (E[max(X, y)] = (1 + y^2) / 2 for
    X ~ U[0, 1]), with E[Y^2] = (1-g)^2 / 3 + g (1-g) k / (k+1) + g^2 k / (k+2)."""
    g = gamma
    ey2 = (1 - g) ** 2 / 3 + g * (1 - g) * k / (k + 1) + g ** 2 * k / (k + 2)
    return {"start": (1 + ey2) / 2, "shutdown": 0.5, "hub": k / (k + 1), "option": 0.5}
