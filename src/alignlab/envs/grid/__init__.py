"""A small NumPy grid engine for ASCII-art gridworlds (after pycolab, used by DeepMind's AI
Safety Gridworlds, Leike et al. 2017, arXiv:1711.09883): map parsing, walls, movement,
pushing, board encoding, and `GridworldEnv`, the `alignlab.envs.finite.FiniteEnv` on a map
(its dynamics are one pure function, so the single env, its exact tabular model and its batched
vector env all agree)."""

from alignlab.envs.grid.engine import (
    ACTION_NAMES,
    DOWN,
    LEFT,
    NOOP,
    RIGHT,
    TILES,
    UP,
    GridMap,
    decode,
    tile,
)
from alignlab.envs.grid.env import GridworldEnv

__all__ = [
    "ACTION_NAMES", "DOWN", "LEFT", "NOOP", "RIGHT", "TILES", "UP", "GridMap", "GridworldEnv", "decode", "tile",
]
