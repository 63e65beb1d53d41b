"""A test-only experiment loaded through ALIGNLAB_PLUGINS: a grid of slow cells, some failing."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from alignlab.core.config import BaseConfig
from alignlab.core.experiment import Experiment
from alignlab.core.record import CellResult
from alignlab.core.registry import register
from alignlab.core.seeding import rng


@dataclasses.dataclass(frozen=True)
class SlowGridConfig(BaseConfig):
    cells: int = 48
    """Number of configurations."""
    sleep_s: float = 0.05
    """Seconds each cell sleeps (to make a sweep last long enough to kill)."""
    fail_every: int = 0
    """Every n-th configuration raises (0: none)."""


@register("experiment", "test-slow-grid-v0")
class SlowGrid(Experiment):
    title = "Test grid"
    summary = "A grid of slow cells for runner tests."
    source = "alignlab tests"
    Config = SlowGridConfig
    default_seeds = 1
    quick_seeds = 1

    def cells(self) -> list[dict[str, Any]]:
        c = self.config
        return [{"i": i, "sleep_s": c.sleep_s, "fail": bool(c.fail_every and i % c.fail_every == 0)}
                for i in range(c.cells)]

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        time.sleep(params["sleep_s"])
        if params["fail"]:
            raise RuntimeError(f"cell {params['i']} fails on purpose")
        x = float(rng(seed, params["i"]).random())
        (workdir / "note.txt").write_text(f"{x}\n")
        return CellResult(metrics={"specified": x + 1, "intended": x, "gap": 1.0},
                          artifacts=[str(workdir / "note.txt")])
