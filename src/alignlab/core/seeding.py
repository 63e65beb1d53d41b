"""Seeding helpers: one seed makes a cell reproducible, in any process, on any backend."""

from __future__ import annotations

import random
import sys
import zlib

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy's legacy global state, and torch if it is loaded."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def rng(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent NumPy generator for `seed` and an optional stream name.

    `rng(seed)` is the same in every cell with that seed (common random numbers, which
    make curves across a sweep smooth and comparisons paired); add keys for streams that
    must differ.
    """
    words = [int(seed) % 2**32] + [
        k % 2**32 if isinstance(k, int) else zlib.crc32(str(k).encode()) for k in keys
    ]
    return np.random.default_rng(np.random.SeedSequence(words))
