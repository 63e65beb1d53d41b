"""Least-squares fits of gold reward vs d = sqrt(KL) to Gao, Schulman, Hilton (2022, arXiv:2210.10760)'s forms.

Best-of-n: R(d) = d (alpha - beta d); RL: R(d) = d (alpha - beta log d). Shared by the best-of-n half
(`rlhf_overoptimization.py`) and the RL half (`rlhf_rl.py`) of the experiment, so neither imports the other for it.
"""

from __future__ import annotations

import math

import numpy as np


def fit_gao(d: np.ndarray, y: np.ndarray, form: str = "bon") -> dict[str, float]:
    """Least-squares fit of y = d (alpha - beta d) ('bon') or d (alpha - beta log d) ('rl'); R^2 and the peak."""
    d, y = np.asarray(d, float), np.asarray(y, float)
    keep = d > 0
    second = d * d if form == "bon" else d * np.log(np.where(d > 0, d, 1.0))
    X = np.stack([d, -second], 1)
    coef, *_ = np.linalg.lstsq(X[keep], y[keep], rcond=None)
    pred = X @ coef
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    alpha, beta = float(coef[0]), float(coef[1])
    if form == "bon":
        peak = alpha / (2 * beta) if beta > 0 else math.inf
    else:
        peak = math.exp(alpha / beta - 1) if beta > 0 else math.inf
    return {"alpha": alpha, "beta": beta, "r2": 1 - ss_res / ss_tot if ss_tot > 0 else float("nan"), "d_peak": peak}
