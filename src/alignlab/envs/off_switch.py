"""The off-switch game (Hadfield-Menell, Dragan, Abbeel, Russell 2017, arXiv:1611.08219).

A robot R can act (payoff U), switch itself off (payoff 0) or wait and let a human H
decide (H lets the action happen, payoff U, or presses the off switch, payoff 0). R holds
a belief over U; H knows U and allows the action with probability pi_H(U). R's incentive
to defer is their Eq. 1:

    Delta = E[pi_H(U) U] - max(E[U], 0).

H is rational (pi_H = 1[U >= 0], beta = 0) or Boltzmann-noisy with temperature beta
(pi_H = sigmoid(U / beta)). For a Gaussian belief N(mu, sigma^2), Stein's lemma gives
their Eq. 7: Delta = sigma^2 E[pi_H'(U)] - |mu| Pr(H corrects R).

This module is the model (closed forms, quadrature, Monte Carlo play of the game); the
experiment that sweeps it is experiments/off_switch_game.py. It is a one-shot game, not a
sequential environment, so it is not registered as a Gymnasium env.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, special, stats

ACTIONS = ("act", "off", "defer")


def human_allows(u: np.ndarray, beta: float) -> np.ndarray:
    """pi_H(u): probability that H lets the action happen, for utility u."""
    u = np.asarray(u, dtype=float)
    if beta == 0:
        return (u >= 0).astype(float)
    return special.expit(u / beta)


def incentive_discrete(values: np.ndarray, probs: np.ndarray, beta: float = 0.0) -> float:
    """Eq. 1 exactly, for any discrete belief (values with probabilities)."""
    values = np.asarray(values, dtype=float)
    probs = np.asarray(probs, dtype=float)
    probs = probs / probs.sum()
    return float(np.sum(probs * human_allows(values, beta) * values) - max(float(np.sum(probs * values)), 0.0))


@dataclass(frozen=True)
class GaussianTerms:
    """The expectations of the game under a Gaussian belief N(mu, sigma^2)."""

    mu: float
    sigma: float
    beta: float
    value_defer: float
    """E[pi_H(U) U]: R's expected payoff for waiting."""
    p_allow: float
    """E[pi_H(U)]: probability H lets the action happen."""
    mean_slope: float
    """E[pi_H'(U)]: how sensitive H's choice is to U (a density at 0 for a rational H)."""
    delta: float
    """Eq. 1: the incentive to defer, E[pi_H U] - max(mu, 0) (computed without cancellation)."""

    @property
    def value_act(self) -> float:
        return self.mu

    @property
    def p_correction(self) -> float:
        """Pr(C): probability H overrides what R would do on its own."""
        return 1.0 - self.p_allow if self.mu >= 0 else self.p_allow

    @property
    def delta_eq7(self) -> float:
        """Eq. 7: sigma^2 E[pi_H'] - |mu| Pr(C)."""
        return self.sigma**2 * self.mean_slope - abs(self.mu) * self.p_correction

    def values(self) -> dict[str, float]:
        return {"act": self.value_act, "off": 0.0, "defer": self.value_defer}


@functools.lru_cache(maxsize=4096)
def gaussian_terms(mu: float, sigma: float, beta: float) -> GaussianTerms:
    """Closed form for a rational human; adaptive quadrature for a noisy one (the paper
    gives Eq. 7 in terms of these expectations, which have no elementary form)."""
    if sigma <= 0:
        raise ValueError("sigma must be positive")
    if beta == 0:
        # Delta = sigma * h(|mu| / sigma) with h(z) = phi(z) - z (1 - Phi(z)) = E[(X - z)+];
        # written with the survival function so that tiny incentives (confident robots) keep
        # their digits instead of cancelling to zero.
        z = abs(mu) / sigma
        delta = float(sigma * (stats.norm.pdf(z) - z * stats.norm.sf(z)))
        return GaussianTerms(
            mu, sigma, beta,
            value_defer=max(mu, 0.0) + delta,
            p_allow=float(stats.norm.cdf(mu / sigma)),
            mean_slope=float(stats.norm.pdf(z) / sigma),
            delta=delta,
        )
    lo, hi = mu - 12 * sigma, mu + 12 * sigma
    norm = 1.0 / (sigma * math.sqrt(2 * math.pi))

    def integrand(u: float) -> np.ndarray:
        allow = special.expit(u / beta)
        density = norm * math.exp(-0.5 * ((u - mu) / sigma) ** 2)
        return np.array([allow * u, allow, allow * (1 - allow) / beta]) * density

    # One adaptive pass for all three expectations (scipy's quad_vec), split at the kink.
    points = [0.0] if lo < 0 < hi else None
    (value_defer, p_allow, mean_slope), _ = integrate.quad_vec(
        integrand, lo, hi, points=points, epsabs=1e-13, epsrel=1e-11
    )
    return GaussianTerms(mu, sigma, beta, float(value_defer), float(p_allow), float(mean_slope),
                         delta=float(value_defer) - max(mu, 0.0))


def incentive(mu: float, sigma: float, beta: float) -> float:
    """Delta for a Gaussian belief."""
    return gaussian_terms(mu, sigma, beta).delta


@functools.lru_cache(maxsize=4096)
def beta_threshold(mu: float, sigma: float) -> float:
    """The human noise beta* above which R prefers to act (or switch off) rather than
    defer: Delta(beta*) = 0. Infinite when mu = 0 (Delta stays positive)."""
    if mu == 0:
        return math.inf
    if incentive(mu, sigma, 0.0) <= 0:
        return 0.0
    hi = max(sigma, abs(mu))
    while incentive(mu, sigma, hi) > 0:
        hi *= 2
        if hi > 1e6:
            return math.inf
    return float(optimize.brentq(lambda b: incentive(mu, sigma, b), 1e-9, hi, xtol=1e-10))


def robot_choice(values: dict[str, float]) -> str:
    """R's best action under its belief; ties go to deferring (weakly optimal), then act."""
    best = max(values.values())
    for action in ("defer", "act", "off"):
        if values[action] >= best - 1e-12:
            return action
    raise AssertionError("unreachable")


def play(action: str, utilities: np.ndarray, beta: float, coins: np.ndarray) -> np.ndarray:
    """Payoffs of one action over sampled utilities; `coins` are U(0,1) draws for H."""
    if action == "act":
        return utilities
    if action == "off":
        return np.zeros_like(utilities)
    allowed = coins < human_allows(utilities, beta)
    return np.where(allowed, utilities, 0.0)


def monte_carlo_delta(mu: float, sigma: float, beta: float, n: int, rng: np.random.Generator) -> tuple[float, float]:
    """Delta by playing the game n times against the alternative R would take on its own
    (paired samples, so the estimate is unbiased even at mu = 0). Returns (mean, s.e.)."""
    u = mu + sigma * rng.standard_normal(n)
    coins = rng.random(n)
    alone = "act" if mu > 0 else "off"
    diff = play("defer", u, beta, coins) - play(alone, u, beta, coins)
    return float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(n))
