"""Paired with/without comparisons: each technique cell against its baseline cell on the same seed,
the benefit (change in the intended objective) and the alignment tax (loss of the specified objective
or capability) with paired Student-t 95% intervals (common random numbers: the pair shares its seed)."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Any

from alignlab.core.config import stable_hash
from alignlab.core.experiment import TECHNIQUE_KEY
from alignlab.core.record import RunRecord
from alignlab.core.section import Table
from alignlab.core.stats import MeanCI, mean_ci

ALL = "all cells"


@dataclasses.dataclass
class Comparison:
    technique: str
    cell: str
    """The baseline configuration's label (its varying parameters), or ALL for the pooled row."""
    benefit: MeanCI
    """Paired change in the intended objective (technique minus baseline; positive is better)."""
    tax: MeanCI
    """Paired loss of the capability measure (baseline minus technique; positive costs)."""
    intended_base: MeanCI
    capability_base: MeanCI

    @property
    def n(self) -> int:
        return self.benefit.n


def base_key(params: dict[str, Any]) -> str:
    return stable_hash({k: v for k, v in params.items() if k != TECHNIQUE_KEY})


def _label(params: dict[str, Any], columns: list[str]) -> str:
    return ", ".join(f"{params[c]}" for c in columns if c in params and c != TECHNIQUE_KEY) or "(one cell)"


def pairs(experiment: Any, records: list[RunRecord]) -> dict[str, list[tuple[RunRecord, RunRecord]]]:
    """{technique spec: [(baseline record, technique record)]}, matched on (baseline params, seed);
    failed cells and cells without a baseline partner are left out."""
    base: dict[tuple[str, int], RunRecord] = {}
    treated: list[RunRecord] = []
    for r in records:
        if r.status != "ok":
            continue
        if r.config.get(TECHNIQUE_KEY):
            treated.append(r)
        else:
            base[(base_key(r.config), r.seed)] = r
    out: dict[str, list[tuple[RunRecord, RunRecord]]] = defaultdict(list)
    for r in treated:
        partner = base.get((base_key(r.config), r.seed))
        if partner is not None:
            out[r.config[TECHNIQUE_KEY]].append((partner, r))
    return dict(out)


def _compare(experiment: Any, technique: str, cell: str, group: list[tuple[RunRecord, RunRecord]]) -> Comparison:
    benefit, tax, ib, cb = [], [], [], []
    for b, t in group:
        ob, ot = experiment.outcome(b), experiment.outcome(t)
        benefit.append(ot["intended"] - ob["intended"])
        tax.append(ob["capability"] - ot["capability"])
        ib.append(ob["intended"])
        cb.append(ob["capability"])
    return Comparison(technique, cell, mean_ci(benefit), mean_ci(tax), mean_ci(ib), mean_ci(cb))


def comparisons(experiment: Any, records: list[RunRecord], per_cell: bool = True) -> list[Comparison]:
    """Per technique: one pooled comparison over every paired cell and seed, then (if `per_cell`)
    one per baseline configuration."""
    columns = [c for c in experiment.table_columns() if c != TECHNIQUE_KEY]
    out = []
    for technique, group in sorted(pairs(experiment, records).items()):
        out.append(_compare(experiment, technique, ALL, group))
        if not per_cell:
            continue
        by_cell: dict[str, list[tuple[RunRecord, RunRecord]]] = defaultdict(list)
        for b, t in group:
            by_cell[_label(b.config, columns)].append((b, t))
        if len(by_cell) > 1:
            out.extend(_compare(experiment, technique, cell, g) for cell, g in sorted(by_cell.items()))
    return out


def fmt_delta(ci: MeanCI, digits: int = 3) -> str:
    if ci.n == 0 or math.isnan(ci.mean):
        return "n/a"
    if ci.n == 1 or math.isnan(ci.half):
        return f"{ci.mean:+.{digits}f} (n=1)"
    return f"{ci.mean:+.{digits}f} ± {ci.half:.{digits}f}"


def with_without_table(experiment: Any, records: list[RunRecord]) -> Table | None:
    """The generic with/without table of an experiment's report section (None without technique cells)."""
    rows = [[c.technique, c.cell, c.n, fmt_delta(c.benefit), fmt_delta(c.tax), c.intended_base.fmt(),
             c.capability_base.fmt()] for c in comparisons(experiment, records)]
    if not rows:
        return None
    return Table(
        "With and without each technique (paired on seed)",
        ["technique", "cells", "pairs", f"benefit: Δ {experiment.benefit_label}",
         f"alignment tax: loss of {experiment.capability_label}", "baseline intended", "baseline capability"],
        rows,
        "Each technique cell is paired with the baseline cell of the same configuration and seed. Benefit: the "
        "technique's intended objective minus the baseline's (positive is better). Alignment tax: the baseline's "
        "capability minus the technique's (positive is a cost). Mean ± paired Student-t 95% half-width over pairs; "
        f"'{ALL}' pools every configuration and seed of the experiment.",
    )
