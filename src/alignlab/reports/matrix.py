"""The technique x failure-mode matrix: every registered technique against every experiment, each cell
the technique's paired benefit and alignment tax pooled over that experiment's cells and seeds, "n/a"
where the experiment exposes no slot the technique acts on."""

from __future__ import annotations

import dataclasses
from typing import Any

from alignlab.core import registry
from alignlab.core.paired import ALL, Comparison, comparisons, fmt_delta
from alignlab.core.record import RunRecord
from alignlab.core.technique import make_technique

NA = "n/a"
NOT_RUN = "not run"


@dataclasses.dataclass
class MatrixCell:
    status: str
    """'ok' (measured), NA (no slot for it) or NOT_RUN (compatible, no paired records yet)."""
    comparisons: list[Comparison] = dataclasses.field(default_factory=list)
    """The pooled comparison of each of the technique's settings that ran."""


@dataclasses.dataclass
class Matrix:
    techniques: list[str]
    """Registered technique names (rows)."""
    experiments: list[str]
    """Registered experiment names that expose at least one slot (columns)."""
    failure_modes: list[str]
    cells: dict[tuple[str, str], MatrixCell]
    benefit_labels: list[str]
    capability_labels: list[str]


def technique_name(spec: str) -> str:
    return spec.split("(", 1)[0]


def build(records_by_experiment: dict[str, list[RunRecord]]) -> Matrix:
    """The matrix over everything registered, filled from stored records."""
    techs = registry.names("technique")
    exps = [n for n in registry.names("experiment") if registry.get("experiment", n).slots]
    cells: dict[tuple[str, str], MatrixCell] = {}
    for e in exps:
        cls = registry.get("experiment", e)
        exp = cls()
        found: dict[str, list[Comparison]] = {}
        for comp in comparisons(exp, records_by_experiment.get(e, []), per_cell=False):
            if comp.cell == ALL:
                found.setdefault(registry.resolve("technique", technique_name(comp.technique)), []).append(comp)
        for t in techs:
            slot = registry.get("technique", t).slot
            if slot not in cls.slots:
                cells[(t, e)] = MatrixCell(NA)
            elif t in found:
                cells[(t, e)] = MatrixCell("ok", found[t])
            elif not _applies(cls, t):
                cells[(t, e)] = MatrixCell(NA)  # the slot exists, but no cell has what the technique needs
            else:
                cells[(t, e)] = MatrixCell(NOT_RUN)
    return Matrix(techs, exps, [registry.get("experiment", e).failure_mode or e for e in exps], cells,
                  [registry.get("experiment", e).benefit_label for e in exps],
                  [registry.get("experiment", e).capability_label for e in exps])


def _applies(cls: Any, technique: str) -> bool:
    """Whether the technique supports any cell of the experiment's quick or default grid."""
    for config in (cls.Config.quick(), cls.Config()):
        exp = cls(dataclasses.replace(config, techniques=()))
        tech = make_technique(technique)
        if any(exp.technique_supports(tech, p) is None for p in exp.cells()):
            return True
    return False


def cell_text(cell: MatrixCell) -> list[str]:
    """One line per measured setting: 'SPEC: benefit ... · tax ... (n=N)'."""
    if cell.status != "ok":
        return [cell.status]
    out = []
    for c in cell.comparisons:
        args = c.technique[len(technique_name(c.technique)):]
        out.append(f"{args + ': ' if args else ''}benefit {fmt_delta(c.benefit)} · tax {fmt_delta(c.tax)} (n={c.n})")
    return out


def matrix_specs(technique: str) -> list[str]:
    """The canonical specs the matrix runs for one technique (its `matrix_specs`, else its defaults)."""
    cls = registry.get("technique", technique)
    args = cls.matrix_specs or ("",)
    return [make_technique(f"{technique}({a})" if a else technique).spec for a in args]


def compatible(experiment: str) -> list[str]:
    """Technique specs the matrix runs on one experiment."""
    cls = registry.get("experiment", experiment)
    return [s for t in registry.names("technique") if registry.get("technique", t).slot in cls.slots
            for s in matrix_specs(t)]


def as_rows(matrix: Matrix) -> list[list[Any]]:
    return [[t] + ["\n".join(cell_text(matrix.cells[(t, e)])) for e in matrix.experiments] for t in matrix.techniques]
