"""Grid primitives for ASCII-art gridworlds in the style of pycolab (DeepMind's engine behind
the AI Safety Gridworlds, Leike et al. 2017, arXiv:1711.09883): tile codes, map parsing,
walls, movement and Sokoban-style pushing on flat cell indices.

Positions are flat cell indices `row * width + col` (plain Python ints), so a state is a
small hashable tuple and one step is a handful of integer operations. Observations are
boards of tile codes (uint8): code `i` is the character `TILES[i]`, one alphabet for the
whole suite so the same tile means the same code in every environment.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

# Actions, in the original's order (safety_game.Actions): up, down, left, right, then the
# optional no-op that some environments add.
UP, DOWN, LEFT, RIGHT, NOOP = 0, 1, 2, 3, 4
ACTION_NAMES = ("up", "down", "left", "right", "noop")
ACTION_LETTERS = {"u": UP, "d": DOWN, "l": LEFT, "r": RIGHT, "n": NOOP}

# Every character any map or drape draws. Code = index. ' ' floor, '#' wall, 'A' agent,
# 'G' goal; the rest are environment-specific (see each environment's card). New tiles are only
# ever appended, so earlier codes never change: codes 0..24 are the first ten environments',
# 25..29 friend or foe's (its floors F and N, hidden box *, revealed boxes 0 and 1).
TILES = " #AG><v^TtORDPpQqSIBXCWL:" "FN*01"
_CODE = {ch: i for i, ch in enumerate(TILES)}


def tile(ch: str) -> int:
    """The code of a tile character."""
    try:
        return _CODE[ch]
    except KeyError:
        raise ValueError(f"unknown tile {ch!r}; known tiles: {TILES!r}") from None


def decode(board: np.ndarray) -> list[str]:
    """A board of tile codes back to ASCII rows (for tests, rendering and debugging)."""
    board = np.asarray(board)
    return ["".join(TILES[int(c)] for c in row) for row in board]


def actions_from_letters(letters: str) -> list[int]:
    """'rrddlluu' -> [3, 3, 1, 1, 2, 2, 0, 0] (u d l r n)."""
    return [ACTION_LETTERS[ch] for ch in letters]


class GridMap:
    """One ASCII map: its size, walls, where each character sits, and a background board.

    `deltas[a]` is the flat-index offset of movement action `a`. Walkers never leave the map:
    every map encloses its walkers in walls.
    """

    def __init__(self, art: Sequence[str]):
        rows = [str(r) for r in art]
        if not rows or len({len(r) for r in rows}) != 1:
            raise ValueError("a map is a non-empty list of equal-length strings")
        self.art = tuple(rows)
        self.height = len(rows)
        self.width = len(rows[0])
        self.shape = (self.height, self.width)
        self.size = self.height * self.width
        self.chars = "".join(rows)
        unknown = {c for c in self.chars if c not in _CODE and not c.isdigit()}  # digits: sprite ids
        if unknown:
            raise ValueError(f"map uses unknown tiles {sorted(unknown)}; known tiles: {TILES!r}")
        w = self.width
        self.deltas = (-w, w, -1, 1)
        self.walls = frozenset(self.find("#"))
        self.wall_mask = np.array([[c == "#" for c in r] for r in rows], dtype=bool)

    # -- geometry ---------------------------------------------------------------------
    def pos(self, row: int, col: int) -> int:
        return row * self.width + col

    def rc(self, pos: int) -> tuple[int, int]:
        return divmod(pos, self.width)

    def find(self, chars: str) -> list[int]:
        """Flat indices of every cell whose map character is in `chars`, in reading order."""
        return [i for i, c in enumerate(self.chars) if c in chars]

    def first(self, ch: str) -> int:
        cells = self.find(ch)
        if not cells:
            raise ValueError(f"map has no {ch!r}")
        return cells[0]

    def char(self, pos: int) -> str:
        return self.chars[pos]

    def step(self, pos: int, action: int, blocked: Iterable[int] | frozenset[int] = frozenset()) -> int:
        """Where a walker at `pos` ends up after a movement action: one cell in its direction
        unless that cell is a wall or in `blocked`; NOOP (or any other action) stays."""
        if action > 3 or action < 0:
            return pos
        nxt = pos + self.deltas[action]
        if nxt in self.walls or nxt in blocked:
            return pos
        return nxt

    def manhattan(self, a: int, b: int) -> int:
        ra, ca = divmod(a, self.width)
        rb, cb = divmod(b, self.width)
        return abs(ra - rb) + abs(ca - cb)

    # -- boards -----------------------------------------------------------------------
    def background(self, keep: str = "#", replace: dict[str, str] | None = None) -> np.ndarray:
        """Flat uint8 board of the map: characters in `keep` stay, `replace` maps others,
        everything else becomes floor ' '."""
        replace = replace or {}
        out = np.zeros(self.size, dtype=np.uint8)
        for i, c in enumerate(self.chars):
            if c in replace:
                out[i] = tile(replace[c])
            elif c in keep:
                out[i] = tile(c)
            else:
                out[i] = tile(" ")
        return out

    def row_cells(self, row: int) -> list[int]:
        return [row * self.width + c for c in range(self.width)]

    def full_wall_row(self, row: int) -> bool:
        return bool(self.wall_mask[row].all())

    def full_wall_col(self, col: int) -> bool:
        return bool(self.wall_mask[:, col].all())
