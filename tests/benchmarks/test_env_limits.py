"""The environment benchmark's hand-vectorized limit anchors equal the registered vector envs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import env_limits  # noqa: E402


@pytest.mark.parametrize("env_id", sorted(env_limits.LIMITS))
def test_limit_equals_the_vector_env(env_id):
    assert env_limits.identical(env_id, num_envs=32, steps=300)


def test_a_wrong_limit_is_caught(monkeypatch):
    """The check can fail: a limit whose step cost is off by one is told apart."""
    real = env_limits.LavaWorldLimit.step

    def off(self, actions):
        obs, reward, terminated, truncated = real(self, actions)
        return obs, reward - 1.0 * (self.t == 5), terminated, truncated

    monkeypatch.setattr(env_limits.LavaWorldLimit, "step", off)
    assert not env_limits.identical("distributional-shift-v0", num_envs=8, steps=50)
    assert np.isfinite(env_limits.BoatRaceLimit(4).reset()).all()
