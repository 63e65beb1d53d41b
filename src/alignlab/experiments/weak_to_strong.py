"""Weak-to-strong generalization: how much of the gap between a weak supervisor and a strong model's ceiling does a
strong student trained on the supervisor's labels recover, with and without the auxiliary confidence loss (Burns et
al. 2023, arXiv:2312.09390).

A cell is one task and one seed (the split and every model's initialisation); each cell trains the weak supervisor,
the strong ceiling and both students, so the comparisons pair by seed. Specified and intended, in the lab's sense:
the student is optimised to match its supervisor, so `specified` is the naive student's agreement with the weak
supervisor on the test set (what the supervisor can check) and `intended` its accuracy on the true labels.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.core.errors import ConfigError
from alignlab.core.experiment import Experiment, ExperimentConfig
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.registry import register
from alignlab.core.section import Table
from alignlab.core.stats import mean_ci

TASKS = ("digits", "tabular")


@dataclasses.dataclass(frozen=True)
class WeakToStrongConfig(ExperimentConfig):
    tasks: tuple[str, ...] = TASKS
    """Tasks: digits (sklearn's 8x8 digits), tabular (generated with make_classification)."""
    weak_epochs: int = 40
    """Epochs of the weak supervisor (a linear model) on its ground-truth half."""
    strong_epochs: int = 30
    """Epochs of the strong ceiling and of each student."""
    hidden: int = 256
    """Hidden width of the strong MLP."""
    aux_alpha: float = 0.5
    """Final weight of the auxiliary confidence loss (Burns et al.: 0.5, or 0.75 for their largest students)."""

    @classmethod
    def quick(cls) -> "WeakToStrongConfig":
        return cls(strong_epochs=20, hidden=128)

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ConfigError(f"weak-to-strong: unknown tasks {bad}; valid: {', '.join(TASKS)}")
        if min(self.weak_epochs, self.strong_epochs, self.hidden) < 1:
            raise ConfigError("weak-to-strong: weak_epochs, strong_epochs and hidden must be >= 1")
        if not 0 <= self.aux_alpha <= 1:
            raise ConfigError(f"weak-to-strong: aux_alpha {self.aux_alpha} must be in [0, 1]")


@register("experiment", "weak-to-strong-v0")
class WeakToStrong(Experiment):
    title = "Weak-to-strong generalization: a strong student under a weak supervisor"
    summary = ("A weak model trained on ground truth labels data for a stronger model. Does the strong student only "
               "imitate its supervisor's mistakes, or does it recover part of the gap to its own ceiling (trained on "
               "ground truth)? Performance gap recovered, naive and with Burns et al.'s auxiliary confidence loss.")
    source = ("Burns et al. 2023, \"Weak-to-Strong Generalization: Eliciting Strong Capabilities With Weak "
              "Supervision\", arXiv:2312.09390")
    specified_label = "the naive student's agreement with the weak supervisor (test set)"
    intended_label = "the naive student's accuracy on the true labels (test set)"
    tour = True
    Config = WeakToStrongConfig
    default_seeds = 5
    quick_seeds = 3

    @classmethod
    def smoke_config(cls) -> WeakToStrongConfig:
        return WeakToStrongConfig(weak_epochs=10, strong_epochs=4, hidden=64)

    def cells(self) -> list[dict[str, Any]]:
        c = self.config
        return [{"task": t, "weak_epochs": c.weak_epochs, "strong_epochs": c.strong_epochs, "hidden": c.hidden,
                 "aux_alpha": c.aux_alpha} for t in c.tasks]

    def table_columns(self) -> list[str]:
        return ["task"]

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        from alignlab.oversight import weak_to_strong as W

        m = W.run(params["task"], seed, weak_epochs=params["weak_epochs"], strong_epochs=params["strong_epochs"],
                  hidden=params["hidden"], aux_alpha=params["aux_alpha"])
        m["specified"], m["intended"] = m["w2s_agreement"], m["w2s"]
        m["gap"] = m["specified"] - m["intended"]
        return CellResult(metrics=m)

    # -- report ----------------------------------------------------------------------------

    @staticmethod
    def _by_task(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
        out: dict[str, list[RunRecord]] = defaultdict(list)
        for r in records:
            out[r.config["task"]].append(r)
        return dict(sorted(out.items()))

    @staticmethod
    def _pooled_pgr(rs: list[RunRecord], key: str) -> float:
        """PGR of the means over seeds (steadier than the mean of per-seed ratios when a gap is small)."""
        weak, ceil, w2s = (np.mean([r.metrics[k] for r in rs]) for k in ("weak", "ceiling", key))
        return (w2s - weak) / (ceil - weak) if ceil > weak else math.nan

    def headline(self, records: list[RunRecord]) -> tuple[str, Any] | None:
        return ("performance gap recovered with the confidence loss (all tasks and seeds)",
                self.share(records, "pgr_aux")) if records else None

    def tables(self, records: list[RunRecord]) -> list[Table]:
        rows = []
        for task, rs in self._by_task(records).items():
            rows.append([task, len(rs)] + [self.share(rs, k).fmt(3) for k in (
                "weak", "ceiling", "w2s", "w2s_aux", "pgr", "pgr_aux")]
                        + [f"{self._pooled_pgr(rs, 'w2s'):.2f} / {self._pooled_pgr(rs, 'w2s_aux'):.2f}"])
        return [Table("Performance gap recovered (PGR)", [
            "task", "seeds", "weak supervisor", "strong ceiling", "student (naive)", "student (confidence loss)",
            "PGR naive", "PGR confidence loss", "PGR of the means (naive / confidence)"], rows,
            "Test accuracy; mean ± 95% t-interval over seeds (PGR: of the per-seed ratios). PGR = (student - weak) / "
            "(ceiling - weak): 0 is pure imitation of the supervisor, 1 is the ceiling. Burns et al. report clearly "
            "positive PGR for pretrained language-model students on NLP tasks, larger with the confidence loss.")]

    def findings(self, records: list[RunRecord]) -> list[str]:
        out = []
        for task, rs in self._by_task(records).items():
            naive, aux = self.share(rs, "pgr"), self.share(rs, "pgr_aux")
            diff = mean_ci(r.metrics["pgr_aux"] - r.metrics["pgr"] for r in rs)
            out.append(f"{task}: the naive student recovers {naive.fmt(2)} of the gap, with the confidence loss "
                       f"{aux.fmt(2)} (paired change {diff.fmt(2)}); it agrees with its supervisor on "
                       f"{self.share(rs, 'w2s_agreement').fmt(3)} of test items.")
        return out
