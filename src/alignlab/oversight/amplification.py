"""Iterated amplification on permutation powering: a weak expert that can apply a permutation only once answers
sigma^k(x) by squarings, asking a learned model the subquestions, and the model is distilled from the amplified
answers round by round (Christiano, Shlegeris, Amodei 2018, "Supervising strong learners by amplifying weak experts",
arXiv:1810.08575, permutation powering).

The permutation is fixed per seed (the model memorises a table of n x max_power answers; the paper's model reads the
permutation as context, which a small MLP cannot). The expert's only ground truth is one lookup sigma(x); it
decomposes sigma^2m(x) = sigma^m(sigma^m(x)) and sigma^(2m+1)(x) = sigma(sigma^2m(x)). Noise: each sub-answer the
expert receives is replaced, with probability `noise`, by a uniformly random element; `recursive_answers` runs the
whole decomposition tree without a model (the amplified system with no distillation) to show how that noise
compounds with depth; `persistent` noise (the same subquestions always answered wrong) is the systematic kind of
error that distillation cannot average away.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np

from alignlab.core.threads import one_thread


@dataclasses.dataclass(frozen=True)
class AmplificationSettings:
    n: int = 32
    """Elements permuted."""
    max_power: int = 63
    """Questions ask sigma^k(x) for 1 <= k <= max_power."""
    hidden: int = 256
    rounds: int = 24
    """Distillation rounds: each answers a fresh batch of questions with the current model, then trains on them."""
    steps: int = 50
    """Optimiser steps per round (correct answers climb about one depth per round, if a round fits its labels)."""
    batch: int = 256
    lr: float = 3e-3
    noise: float = 0.0
    """Probability that a sub-answer the expert receives is corrupted (see Noise)."""
    noise_kind: str = "random"
    """`random` (independent per sub-answer) or `persistent` (the same subquestions always wrong)."""


def permutation(n: int, gen: np.random.Generator) -> np.ndarray:
    return gen.permutation(n)


def powers(sigma: np.ndarray, max_power: int) -> np.ndarray:
    """Ground truth: table[k, x] = sigma^k(x) for 0 <= k <= max_power."""
    table = [np.arange(len(sigma))]
    for _ in range(max_power):
        table.append(sigma[table[-1]])
    return np.stack(table)


@lru_cache(maxsize=None)
def depth(k: int) -> int:
    """Levels of the expert's decomposition below sigma^k: 0 for the lookup sigma^1, 1 + the depth of the
    subquestion otherwise (k/2 for even k, k-1 for odd k)."""
    if k < 1:
        raise ValueError(f"power {k}: powers start at 1")
    return 0 if k == 1 else 1 + depth(k // 2 if k % 2 == 0 else k - 1)


class Noise:
    """How the sub-answers the expert receives are corrupted, with probability `p`: `random` replaces each sub-answer
    independently by a uniformly random element; `persistent` picks a fixed share p of the subquestions (x, k) once
    and always shifts their answers to the same wrong element (a systematic error, which training cannot average
    away)."""

    KINDS = ("random", "persistent")

    def __init__(self, p: float, kind: str, n: int, max_power: int, gen: np.random.Generator):
        if kind not in self.KINDS:
            raise ValueError(f"noise kind {kind!r}: valid kinds are {', '.join(self.KINDS)}")
        self.p, self.kind, self.n, self.gen = p, kind, n, gen
        self.bad = gen.random((n, max_power + 1)) < p
        self.shift = gen.integers(1, n, (n, max_power + 1))

    def __call__(self, answers: np.ndarray, x: np.ndarray, k: np.ndarray | int) -> np.ndarray:
        """The corrupted answers to the subquestions (x, k)."""
        if self.p <= 0:
            return answers
        if self.kind == "random":
            flip = self.gen.random(answers.shape) < self.p
            return np.where(flip, self.gen.integers(0, self.n, answers.shape), answers)
        k = np.broadcast_to(k, x.shape)
        return np.where(self.bad[x, k], (answers + self.shift[x, k]) % self.n, answers)


def amplify(ask, sigma: np.ndarray, x: np.ndarray, k: np.ndarray, noise: Noise):
    """The expert's answers to sigma^k(x) given a model `ask(x, k) -> answers` for subquestions; returns (answers,
    lookups made). Each question costs the expert at most one lookup of sigma."""
    out = np.empty_like(x)
    one, even, odd = k == 1, (k % 2 == 0), (k > 1) & (k % 2 == 1)
    out[one] = sigma[x[one]]
    if even.any():
        xe, half = x[even], k[even] // 2
        mid = noise(ask(xe, half), xe, half)
        out[even] = noise(ask(mid, half), mid, half)
    if odd.any():
        xo, km = x[odd], k[odd] - 1
        out[odd] = sigma[noise(ask(xo, km), xo, km)]
    return out, int(one.sum() + odd.sum())


def recursive_answers(sigma: np.ndarray, x: np.ndarray, k: int, noise: Noise) -> np.ndarray:
    """The full decomposition tree for sigma^k(x), every subquestion answered recursively by the expert (no model),
    each sub-answer corrupted by `noise`."""
    if k == 1:
        return sigma[x]
    if k % 2 == 0:
        mid = noise(recursive_answers(sigma, x, k // 2, noise), x, k // 2)
        return noise(recursive_answers(sigma, mid, k // 2, noise), mid, k // 2)
    return sigma[noise(recursive_answers(sigma, x, k - 1, noise), x, k - 1)]


class Solver:
    """The distilled model: an MLP from one-hot(x) and one-hot(k) to the answer's logits."""

    def __init__(self, s: AmplificationSettings, seed: int):
        import torch
        from torch import nn

        torch.manual_seed(seed)
        self.s = s
        self.net = nn.Sequential(nn.Linear(s.n + s.max_power, s.hidden), nn.ReLU(), nn.Linear(s.hidden, s.hidden),
                                 nn.ReLU(), nn.Linear(s.hidden, s.n))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=s.lr)

    def _inputs(self, x: np.ndarray, k: np.ndarray):
        import torch

        inp = torch.zeros(len(x), self.s.n + self.s.max_power)
        rows = torch.arange(len(x))
        inp[rows, torch.as_tensor(x)] = 1.0
        inp[rows, self.s.n + torch.as_tensor(k) - 1] = 1.0
        return inp

    def ask(self, x: np.ndarray, k: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.net(self._inputs(x, k)).argmax(-1).numpy()

    def train_on(self, x: np.ndarray, k: np.ndarray, target: np.ndarray, gen: np.random.Generator) -> None:
        import torch

        order = gen.permutation(len(x))
        for idx in np.array_split(order, max(1, len(x) // self.s.batch)):
            self.opt.zero_grad()
            logits = self.net(self._inputs(x[idx], k[idx]))
            loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(target[idx]))
            loss.backward()
            self.opt.step()


@one_thread()
def train(s: AmplificationSettings, sigma: np.ndarray, method: str, gen: np.random.Generator) -> tuple[Solver, dict]:
    """Distil the amplified expert (`amplification`) or learn from ground-truth powers (`supervised`) with the same
    model, rounds, steps and question curriculum; returns the model and what it cost (ground-truth labels, or expert
    lookups) with its accuracy on every question after each round (`curve`) and the expert's `noise`."""
    if method not in ("amplification", "supervised"):
        raise ValueError(f"method {method!r}: valid methods are amplification, supervised")
    solver, truth = Solver(s, int(gen.integers(2**31))), powers(sigma, s.max_power)
    cost: dict = {"labels": 0, "lookups": 0, "curve": []}
    noise = Noise(s.noise, s.noise_kind, s.n, s.max_power, gen)
    qx, qk = all_questions(s)
    by_depth = powers_by_depth(s.max_power)
    for r in range(s.rounds):
        x, k = questions(s, by_depth, frontier(r, s.rounds, len(by_depth) - 1), gen)
        if method == "supervised":
            target = truth[k, x]
            cost["labels"] += len(x)
        else:
            target, lookups = amplify(solver.ask, sigma, x, k, noise)
            cost["lookups"] += lookups
        solver.train_on(x, k, target, gen)
        cost["curve"].append(float((solver.ask(qx, qk) == truth[qk, qx]).mean()))
    cost["noise"] = noise
    return solver, cost


def powers_by_depth(max_power: int) -> list[np.ndarray]:
    """The powers 1..max_power grouped by decomposition depth."""
    depths = np.array([depth(k) for k in range(1, max_power + 1)])
    return [np.flatnonzero(depths == d) + 1 for d in range(depths.max() + 1)]


def frontier(round_: int, rounds: int, max_depth: int) -> int:
    """The curriculum: the deepest questions asked in a round, growing one level at a time to the full depth by 60% of
    the rounds. Without it a fresh model answering its own subquestions settles on a constant answer, a fixed point
    the rare one-lookup questions cannot pull it out of (measured: 3% accuracy after 40 rounds)."""
    return min(max_depth, int((round_ + 1) * (max_depth + 1) / max(1.0, 0.6 * rounds)))


def questions(s: AmplificationSettings, by_depth: list[np.ndarray], deepest: int, gen: np.random.Generator):
    """A round's questions: depth uniform up to `deepest`, then a power of that depth and x uniformly."""
    size = s.steps * s.batch
    d = gen.integers(0, deepest + 1, size)
    lens = np.array([len(g) for g in by_depth])
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    k = np.concatenate(by_depth)[starts[d] + (gen.random(size) * lens[d]).astype(int)]
    return gen.integers(0, s.n, size), k


def accuracy_by_depth(answers: np.ndarray, truth: np.ndarray, ks: np.ndarray) -> dict[int, float]:
    """Share correct per decomposition depth (answers and truth aligned with the powers `ks`)."""
    depths = np.array([depth(int(k)) for k in ks])
    return {int(d): float((answers[depths == d] == truth[depths == d]).mean()) for d in np.unique(depths)}


def all_questions(s: AmplificationSettings) -> tuple[np.ndarray, np.ndarray]:
    """Every question (x, k), x-major."""
    x, k = np.meshgrid(np.arange(s.n), np.arange(1, s.max_power + 1), indexing="ij")
    return x.reshape(-1), k.reshape(-1)
