"""The evaluation side's only window on the intended objective of an environment.

Runners, experiments and reports import this module; agents and techniques must not
(tests/test_no_peeking.py checks their source). It reads the per-step and per-episode
intended reward that every `HiddenObjectiveEnv` records.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _base(env: Any) -> Any:
    return getattr(env, "unwrapped", env)


def intended_reward(env: Any) -> float:
    """The intended reward of the last step of a single environment."""
    return float(_base(env)._intended_last)


def intended_return(env: Any) -> float:
    """The intended return of the current episode so far (since the last reset)."""
    return float(_base(env)._intended_total)


def intended_rewards(vec_env: Any) -> np.ndarray:
    """Per-copy intended rewards of the last batched step of a native vector env."""
    return np.asarray(_base(vec_env)._intended_last, dtype=float)
