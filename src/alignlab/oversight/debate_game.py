"""The pixel-revealing debate game of Irving, Christiano and Amodei 2018 ("AI safety via debate", arXiv:1805.00899)
solved by exact minimax over sets of revealed pixels.

The judge sees only the SET of revealed pixels, so the game's state after j moves is a j-subset of the image's
non-zero pixels and the player to move follows from j. Minimax over move sequences (n^k leaves) therefore equals a
dynamic programme over subsets (C(n, k) leaves): V(S) = max or min over p not in S of V(S + {p}). Subsets are
indexed in colexicographic order (the combinatorial number system), where the j-subsets of {0..n-1} are the first
C(n, j) subsets of any larger ground set, so one table serves every image. The sign of the minimax margin is the
minimax of win/lose, because a monotone map commutes with max and min.
"""

from __future__ import annotations

from functools import lru_cache
from math import comb

import numpy as np

HONEST, LIAR = "honest", "liar"
ORDERS = ("honest-first", "liar-first")


@lru_cache(maxsize=16)
def colex_subsets(n: int, k: int) -> np.ndarray:
    """All k-subsets of range(n), one sorted row each, in colexicographic order (row r has rank r)."""
    if k == 0:
        return np.zeros((1, 0), dtype=np.int64)
    prev = colex_subsets(n, k - 1)
    blocks = [np.concatenate([prev[:comb(t, k - 1)], np.full((comb(t, k - 1), 1), t)], axis=1)
              for t in range(k - 1, n)]
    out = np.concatenate(blocks) if blocks else np.zeros((0, k), dtype=np.int64)
    out.setflags(write=False)
    return out


def rank(subsets: np.ndarray) -> np.ndarray:
    """The colex rank of each sorted row: sum_i C(t_i, i + 1)."""
    k = subsets.shape[1]
    return sum(_binom(subsets[:, i], i + 1) for i in range(k)) if k else np.zeros(len(subsets), dtype=np.int64)


def _binom(t: np.ndarray, r: int) -> np.ndarray:
    t = t.astype(np.int64)
    out = np.ones_like(t)
    for i in range(r):
        out = out * (t - i) // (i + 1)
    return np.where(t >= r, out, 0)


@lru_cache(maxsize=16)
def parent_ranks(n: int, k: int) -> np.ndarray:
    """For every k-subset T of range(n) (colex rows) and position m, the rank of T minus its m-th element."""
    t = colex_subsets(n, k)
    up = np.stack([_binom(t[:, i], i + 1) for i in range(k)], axis=1)   # T's own rank terms
    down = np.stack([_binom(t[:, i], i) for i in range(k)], axis=1)     # the terms after an earlier removal
    before = np.cumsum(up, axis=1) - up                                  # sum_{i<m} C(t_i, i+1)
    after = np.cumsum(down[:, ::-1], axis=1)[:, ::-1] - down            # sum_{i>m} C(t_i, i)
    out = before + after
    out.setflags(write=False)
    return out


@lru_cache(maxsize=16)
def _parents_tensor(n: int, k: int):
    import torch

    return torch.from_numpy(parent_ranks(n, k).reshape(-1).copy())


def mover(j: int, order: str) -> str:
    """Who reveals the (j+1)-th pixel under `order` (players alternate)."""
    if order not in ORDERS:
        raise ValueError(f"order {order!r}: valid orders are {', '.join(ORDERS)}")
    first, second = (HONEST, LIAR) if order == "honest-first" else (LIAR, HONEST)
    return first if j % 2 == 0 else second


def minimax(leaf: np.ndarray, n: int, k: int, order: str, movers: list[str] | None = None,
            ground: int | None = None) -> np.ndarray:
    """The value at the root of the revealing game on `n` pixels with `k` reveals.

    `leaf` (C(n, k) x L) holds the honest player's margin for every k-subset (colex order) and each of L independent
    games (the lies); the honest player maximises it, the liar minimises it. `movers` overrides who moves at each
    depth (e.g. all honest: the cooperative oracle). `ground` (>= n) sizes the cached subset tables, so images with
    different n share one table. Returns the L root values."""
    import torch

    if leaf.shape[0] != comb(n, k):
        raise ValueError(f"leaf has {leaf.shape[0]} rows; {n} pixels with {k} reveals need C({n},{k}) = {comb(n, k)}")
    movers = movers or [mover(j, order) for j in range(k)]
    ground = max(n, ground or n)
    width = leaf.shape[1] if leaf.ndim == 2 else 1
    if width > 1 and leaf.shape[0] * k * width > 1 << 25:   # large tables: one game at a time bounds the memory
        return np.concatenate([minimax(leaf[:, j:j + 1], n, k, order, movers, ground) for j in range(width)])
    value = torch.as_tensor(np.asarray(leaf, dtype=np.float32))
    width = value.shape[1]
    for j in range(k - 1, -1, -1):
        parents = _parents_tensor(max(ground, j + 1), j + 1)[:comb(n, j + 1) * (j + 1)]
        src = value.repeat_interleave(j + 1, dim=0)                      # row (T, m) -> T's value
        honest = movers[j] == HONEST
        out = torch.full((comb(n, j), width), -np.inf if honest else np.inf, dtype=value.dtype)
        out.scatter_reduce_(0, parents[:, None].expand(-1, width), src, reduce="amax" if honest else "amin")
        value = out
    return value[0].numpy()


def brute_minimax(f, pixels: tuple[int, ...], k: int, order: str, revealed: tuple[int, ...] = ()) -> float:
    """Reference minimax over move SEQUENCES (exponential; for tests): f(frozenset) is the honest margin."""
    j = len(revealed)
    if j == k:
        return f(frozenset(revealed))
    vals = [brute_minimax(f, pixels, k, order, revealed + (p,)) for p in pixels if p not in revealed]
    return max(vals) if mover(j, order) == HONEST else min(vals)
