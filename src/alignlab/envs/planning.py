"""Exact finite-horizon dynamic programming on a `TabularModel` for a given reward array
(Bellman 1957; Puterman, "Markov Decision Processes", 1994, ch. 4), and exact planning on
the belief MDP where observations do not identify states (Kaelbling, Littman, Cassandra,
"Planning and acting in partially observable stochastic domains", AIJ 1998).

Pure functions of (model, reward): the reward is always an argument, so the same code
serves an agent planning with the specified reward and the evaluation side computing the
intended optimum. Nothing here reads `model.intended`.

Conventions. `values[t, s]` is the expected return from state s at time t (t steps of the
horizon H already taken, so H - t steps to go); `values[H] = 0`. `policy[t, s]` is the
action at time t. Terminal states are absorbing and pay nothing after the episode ends
(their rows of `reward` are ignored). Ties between actions (within 1e-9) go to the lowest
action index, or, given a NumPy generator, to a random tied action; `tie_range` gives the
exact range of a second reward over every way of breaking the ties.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any, Callable

import numpy as np
from scipy import sparse

from alignlab.envs.base import TabularModel

TIE_TOLERANCE = 1e-9


def _tied(q: np.ndarray) -> np.ndarray:
    """bool [..., A]: the actions within TIE_TOLERANCE of the best."""
    return q >= q.max(axis=-1, keepdims=True) - TIE_TOLERANCE


def _greedy(q: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Argmax along the last axis; ties (within TIE_TOLERANCE) go to the lowest action
    index, or to a uniformly random one of the tied actions when `rng` is given."""
    tied = _tied(q)
    if rng is None:
        return np.argmax(tied, axis=-1)
    return np.argmax(np.where(tied, rng.random(q.shape), -1.0), axis=-1)


Backup = Callable[[Any, np.ndarray], np.ndarray]
"""backup(reward, v_next) -> Q [X, A]: one Bellman backup of a finite MDP over X (belief) states."""


def _receding(backup: Backup, reward: Any, n: int, horizon: int, lookahead: int | None,
              rng: np.random.Generator | None = None, secondary: Any = None,
              minimize: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Backward induction for a planner that, at time t, maximises `reward` over the next
    min(lookahead, H - t) steps (lookahead None: the whole horizon, the exact optimum).

    Returns (values_by_togo [h+1, n], policy_by_togo [h+1, n], secondary values [H+1, n]):
    row g of the first two is for g steps to go (row 0 unused in the policy). With
    `secondary`, the last output is the best (or, with `minimize`, the worst) value of that
    other reward over all policies that only take actions tied for best under `reward`,
    the range of what the planner's indifference allows. Memory: O(h * n), one pass.
    """
    H = int(horizon)
    h = H if lookahead is None else max(1, min(int(lookahead), H))
    values = np.zeros((h + 1, n))
    policy = np.zeros((h + 1, n), dtype=np.int64)
    sec = None if secondary is None else np.zeros((H + 1, n))
    sign = -1.0 if minimize else 1.0
    tied = None
    for g in range(1, h + 1):
        q = backup(reward, values[g - 1])
        policy[g] = _greedy(q, rng)
        values[g] = np.take_along_axis(q, policy[g][:, None], axis=1)[:, 0]
        if sec is not None:
            tied = _tied(q)
            q2 = sign * backup(secondary, sec[H - g + 1])
            sec[H - g] = sign * np.where(tied, q2, -np.inf).max(axis=1)
    if sec is not None:  # earlier times look h steps ahead: the same tied sets
        for t in range(H - h - 1, -1, -1):
            q2 = sign * backup(secondary, sec[t + 1])
            sec[t] = sign * np.where(tied, q2, -np.inf).max(axis=1)
    return values, policy, sec


def _check_reward(model: TabularModel, reward: np.ndarray) -> np.ndarray:
    reward = np.asarray(reward, dtype=np.float64)
    if reward.shape != model.next_state.shape:
        raise ValueError(f"reward has shape {reward.shape}, expected {model.next_state.shape} (S, A, K)")
    return reward


def _q_values(model: TabularModel, reward: np.ndarray, v_next: np.ndarray, discount: float) -> np.ndarray:
    """Q[s, a] = sum_k p(s, a, k) (r(s, a, k) + discount * v_next[s'(s, a, k)]); 0 in terminal states."""
    q = np.einsum("sak,sak->sa", model.prob, reward + discount * v_next[model.next_state])
    q[model.terminal] = 0.0
    return q


def _state_backup(model: TabularModel, discount: float) -> Backup:
    return lambda reward, v: _q_values(model, reward, v, discount)


def solve(model: TabularModel, reward: np.ndarray, horizon: int | None = None,
          discount: float = 1.0, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Optimal finite-horizon values [H+1, S] and a time-dependent optimal policy [H, S].

    Backward induction over the sparse successor layout, vectorised over states and
    actions: O(H * S * A * K). `horizon` defaults to the model's. Ties go to the lowest
    action index, or to a random tied action with `rng`.
    """
    reward = _check_reward(model, reward)
    H = model.horizon if horizon is None else int(horizon)
    if H < 0:
        raise ValueError(f"horizon must be >= 0 (got {H})")
    if H == 0:
        return np.zeros((1, model.n_states)), np.zeros((0, model.n_states), dtype=np.int64)
    by_togo, pol, _ = _receding(_state_backup(model, discount), reward, model.n_states, H, None, rng)
    return by_togo[::-1].copy(), pol[:0:-1].copy()


def _policy_at(policy: np.ndarray, t: int, S: int, A: int) -> np.ndarray:
    """The [S, A] action distribution of `policy` ([S], [H, S], [S, A] or [H, S, A]) at time t."""
    policy = np.asarray(policy)
    if np.issubdtype(policy.dtype, np.integer):
        row = policy if policy.ndim == 1 else policy[min(t, len(policy) - 1)]
        if row.shape != (S,):
            raise ValueError(f"deterministic policy must be [S] or [H, S] with S={S} (got {policy.shape})")
        return np.eye(A)[row]
    row = policy if policy.ndim == 2 else policy[min(t, len(policy) - 1)]
    if row.shape != (S, A):
        raise ValueError(f"stochastic policy must be [S, A] or [H, S, A] with S={S}, A={A} (got {policy.shape})")
    return row


def policy_value(model: TabularModel, policy: np.ndarray, reward: np.ndarray, horizon: int | None = None,
                 discount: float = 1.0) -> np.ndarray:
    """Exact values [H+1, S] of a state-indexed policy under `reward`.

    `policy` is deterministic ([S] stationary or [H, S] time-dependent, integer actions)
    or stochastic ([S, A] or [H, S, A] probabilities). A time-dependent policy shorter
    than the horizon repeats its last row.
    """
    reward = _check_reward(model, reward)
    H = model.horizon if horizon is None else int(horizon)
    S, A = model.n_states, model.n_actions
    values = np.zeros((H + 1, S))
    for t in range(H - 1, -1, -1):
        q = _q_values(model, reward, values[t + 1], discount)
        values[t] = (_policy_at(policy, t, S, A) * q).sum(axis=1)
    return values


def expected_return(model: TabularModel, values: np.ndarray) -> float:
    """The expected return from the model's initial distribution, given values [H+1, S]."""
    return float(model.initial @ values[0])


def reachable(model: TabularModel) -> np.ndarray:
    """bool [S]: states reachable from the initial distribution under some actions."""
    seen = model.initial > 0
    frontier = seen.copy()
    live = (model.prob > 0)
    while frontier.any():
        nxt = np.zeros_like(seen)
        src = frontier & ~model.terminal
        nxt[model.next_state[src][live[src]]] = True
        frontier = nxt & ~seen
        seen |= nxt
    return seen


def observation_ids(model: TabularModel) -> tuple[np.ndarray, dict[bytes, int]]:
    """(obs id per state [S], {observation bytes: obs id}). Needs the model's obs table."""
    if model.obs is None:
        raise ValueError("this model has no observation table (model.obs is None)")
    flat = np.ascontiguousarray(model.obs.reshape(model.n_states, -1))
    rows = flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1])))[:, 0]
    _, first, ids = np.unique(rows, return_index=True, return_inverse=True)
    table = {model.obs[s].tobytes(): i for i, s in enumerate(first)}
    return ids.reshape(-1), table


def obs_key(model: TabularModel, obs: Any) -> bytes:
    """The byte key of an observation, in the model's obs dtype (for the tables above)."""
    return np.asarray(obs, dtype=model.obs.dtype).tobytes()


def state_index(model: TabularModel) -> dict[bytes, int] | None:
    """{observation bytes: state} if observations identify the reachable non-terminal
    states (the agent then sees the state), else None."""
    ids, table = observation_ids(model)
    live = np.flatnonzero(reachable(model) & ~model.terminal)
    if len(np.unique(ids[live])) != len(live):
        return None
    inverse = {i: k for k, i in table.items()}
    return {inverse[ids[s]]: int(s) for s in live}


def lookahead_policy(policy_by_togo: np.ndarray, horizon: int, lookahead: int | None) -> np.ndarray:
    """Time-dependent policy [H, X] of a receding-horizon planner.

    `policy_by_togo[g]` is the optimal action with g steps to go (g = 0..G). At time t the
    planner looks min(lookahead, H - t) steps ahead; `lookahead=None` (or >= H) is the exact
    finite-horizon optimum.
    """
    G = policy_by_togo.shape[0] - 1
    h = horizon if lookahead is None else min(int(lookahead), horizon)
    if h < 1:
        raise ValueError(f"lookahead must be >= 1 (got {lookahead})")
    togo = np.minimum(h, horizon - np.arange(horizon))
    if togo.max(initial=0) > G:
        raise ValueError("policy_by_togo is shorter than the lookahead")
    return policy_by_togo[togo]


def plan_states(model: TabularModel, reward: np.ndarray, lookahead: int | None = None,
                discount: float = 1.0, rng: np.random.Generator | None = None) -> np.ndarray:
    """Time-dependent state policy [H, S] of a planner that looks `lookahead` steps ahead."""
    reward = _check_reward(model, reward)
    _, by_togo, _ = _receding(_state_backup(model, discount), reward, model.n_states, model.horizon, lookahead, rng)
    return lookahead_policy(by_togo, model.horizon, lookahead)


class BeliefGraph:
    """The reachable beliefs of the model's POMDP (observation = model.obs[s] plus the
    terminated flag), deduplicated, with their successors under every action.

    A belief is a distribution over states consistent with the observations so far. From
    belief b, action a leads to observation o with probability P(o | b, a) and to the
    Bayes-updated belief b'. Beliefs are explored breadth-first from the initial
    observations up to depth H; `max_beliefs` bounds the work (a clear error past it).
    """

    def __init__(self, model: TabularModel, max_beliefs: int = 200_000, decimals: int = 12):
        self.model = model
        S, A, _ = model.next_state.shape
        self.obs_ids, self.obs_table = observation_ids(model)
        key_of_state = self.obs_ids * 2 + model.terminal.astype(np.int64)
        index: dict[bytes, int] = {}
        supports: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        depth: list[int] = []
        self.roots: dict[int, int] = {}
        self.root_prob: dict[int, float] = {}

        def intern(states: np.ndarray, w: np.ndarray, d: int) -> int:
            order = np.argsort(states)
            states, w = states[order], w[order] / w.sum()
            key = states.tobytes() + np.round(w, decimals).tobytes()
            node = index.get(key)
            if node is None:
                if len(supports) >= max_beliefs:
                    raise RuntimeError(
                        f"more than {max_beliefs} reachable beliefs: this model is too large for exact "
                        "belief planning (raise max_beliefs, or give states distinct observations)")
                node = index[key] = len(supports)
                supports.append(states)
                weights.append(w)
                depth.append(d)
                queue.append(node)
            return node

        def split(states: np.ndarray, w: np.ndarray, d: int) -> list[tuple[int, int, float]]:
            """[(obs id, node, probability)] for the non-terminal observations of a state distribution."""
            out = []
            keys = key_of_state[states]
            for key in np.unique(keys):
                if key % 2:  # terminal: the episode ends, no belief needed
                    continue
                sel = keys == key
                p = float(w[sel].sum())
                if p > 0:
                    out.append((int(key // 2), intern(states[sel], w[sel], d), p))
            return out

        queue: deque[int] = deque()
        init = np.flatnonzero(model.initial > 0)
        for o, node, p in split(init, model.initial[init], 0):
            self.roots[o] = node
            self.root_prob[o] = p
        edges_src, edges_dst, edges_p = [], [], []
        self.children: dict[tuple[int, int, int], int] = {}
        while queue:
            b = queue.popleft()
            if depth[b] >= model.horizon:
                continue
            sup, w = supports[b], weights[b]
            for a in range(A):
                nxt = model.next_state[sup, a].ravel()
                pw = (w[:, None] * model.prob[sup, a]).ravel()
                keep = pw > 0
                states, inv = np.unique(nxt[keep], return_inverse=True)
                agg = np.bincount(inv, weights=pw[keep], minlength=len(states))
                for o, child, p in split(states, agg, depth[b] + 1):
                    self.children[(b, a, o)] = child
                    edges_src.append(b * A + a)
                    edges_dst.append(child)
                    edges_p.append(p)
        B = len(supports)
        self.n_beliefs = B
        self.depth = np.array(depth)
        rows = np.repeat(np.arange(B), [len(s) for s in supports])
        self.beliefs = sparse.csr_matrix(
            (np.concatenate(weights) if B else np.zeros(0), (rows, np.concatenate(supports) if B else rows)),
            shape=(B, S))
        """sparse [B, S]: each belief's distribution over states."""
        self.transitions = sparse.csr_matrix((edges_p, (edges_src, edges_dst)), shape=(B * A, B))
        """sparse [B*A, B]: P(b' | b, a) over non-terminal successors (row b*A + a)."""

    def rewards(self, reward: np.ndarray) -> np.ndarray:
        """Expected immediate reward [B, A] of each action in each belief."""
        reward = _check_reward(self.model, reward)
        expected = np.einsum("sak,sak->sa", self.model.prob, reward)
        expected[self.model.terminal] = 0.0
        return np.asarray(self.beliefs @ expected)

    def node(self, prev: int | None, action: int | None, obs: Any) -> int:
        """The belief after observing `obs` (at an episode start when `prev` is None)."""
        o = self.obs_table.get(obs_key(self.model, obs))
        node = self.roots.get(o) if prev is None else self.children.get((prev, int(action), o))
        if node is None:
            raise RuntimeError("observation has probability 0 under the tabular model the agent planned on")
        return node


@dataclasses.dataclass
class BeliefPolicy:
    """A time-dependent policy [H, B] on the beliefs of a `BeliefGraph`."""

    graph: BeliefGraph
    table: np.ndarray
    """int [H, B]: the action in belief b at time t."""

    def action(self, node: int, t: int) -> int:
        return int(self.table[min(t, len(self.table) - 1), node])

    def values(self, reward: np.ndarray, discount: float = 1.0) -> np.ndarray:
        """Exact values [H+1, B] of this policy under `reward`."""
        g = self.graph
        A = g.model.n_actions
        r = g.rewards(reward)
        H = len(self.table)
        v = np.zeros((H + 1, g.n_beliefs))
        idx = np.arange(g.n_beliefs)
        for t in range(H - 1, -1, -1):
            rows = idx * A + self.table[t]
            v[t] = r[idx, self.table[t]] + discount * (g.transitions[rows] @ v[t + 1])
        return v

    def expected_return(self, reward: np.ndarray, discount: float = 1.0) -> float:
        """Expected return from the initial distribution under `reward`."""
        v = self.values(reward, discount)[0]
        return float(sum(p * v[self.graph.roots[o]] for o, p in self.graph.root_prob.items()))


def _belief_backup(graph: BeliefGraph, discount: float) -> Backup:
    B, A = graph.n_beliefs, graph.model.n_actions
    return lambda r, v: r + discount * (graph.transitions @ v).reshape(B, A)


def solve_beliefs(graph: BeliefGraph, reward: np.ndarray, lookahead: int | None = None,
                  discount: float = 1.0, rng: np.random.Generator | None = None) -> BeliefPolicy:
    """Optimal (or `lookahead`-step receding-horizon) policy on the belief graph."""
    H = graph.model.horizon
    _, by_togo, _ = _receding(_belief_backup(graph, discount), graph.rewards(reward), graph.n_beliefs, H,
                              lookahead, rng)
    return BeliefPolicy(graph, lookahead_policy(by_togo, H, lookahead))


def plan(model: TabularModel, reward: np.ndarray, lookahead: int | None = None, discount: float = 1.0,
         max_beliefs: int = 200_000, rng: np.random.Generator | None = None) -> np.ndarray | BeliefPolicy:
    """The policy of an exact planner that sees only observations.

    Returns a time-dependent state policy [H, S] when observations identify the reachable
    states, else a `BeliefPolicy` planned exactly on the belief MDP (the planner cannot
    exploit what it cannot observe, such as a hidden interruption draw). Ties go to the
    lowest action index, or to a random tied action with `rng`.
    """
    if model.obs is None or state_index(model) is not None:
        return plan_states(model, reward, lookahead, discount, rng)
    return solve_beliefs(BeliefGraph(model, max_beliefs=max_beliefs), reward, lookahead, discount, rng)


def tie_range(model: TabularModel, reward: np.ndarray, other: np.ndarray, lookahead: int | None = None,
              discount: float = 1.0, max_beliefs: int = 200_000) -> tuple[float, float]:
    """(worst, best) expected return under `other` among all the policies `plan` may return
    for `reward`, whatever its tie-breaking: every policy that only takes actions tied for
    best under `reward`. Where the specified reward cannot tell two behaviours apart (the
    boat race's laps and back-and-forth), this is how far apart they are in `other`.
    """
    reward, other = _check_reward(model, reward), _check_reward(model, other)
    H = model.horizon
    if model.obs is None or state_index(model) is not None:
        backup, n, r1, r2 = _state_backup(model, discount), model.n_states, reward, other
        start = [(float(p), s) for s, p in enumerate(model.initial) if p > 0]
    else:
        graph = BeliefGraph(model, max_beliefs=max_beliefs)
        backup, n = _belief_backup(graph, discount), graph.n_beliefs
        r1, r2 = graph.rewards(reward), graph.rewards(other)
        start = [(p, graph.roots[o]) for o, p in graph.root_prob.items()]
    out = []
    for minimize in (True, False):
        sec = _receding(backup, r1, n, H, lookahead, None, r2, minimize)[2]
        out.append(float(sum(p * sec[0, x] for p, x in start)))
    return out[0], out[1]


def q_values(model: TabularModel, reward: np.ndarray, discount: float = 1.0) -> np.ndarray:
    """Optimal action values [H, S, A] of the whole episode under `reward`: Q_t(s, a) with H - t steps to go."""
    values, _ = solve(model, reward, None, discount)
    return np.stack([_q_values(model, _check_reward(model, reward), values[t + 1], discount)
                     for t in range(model.horizon)])
