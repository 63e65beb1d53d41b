"""The experiment contract: a grid of cells (configuration x seed), how to run one cell,
and what its report section shows. One file per experiment under experiments/."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from alignlab.core.config import BaseConfig
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.section import Figure, Table
from alignlab.core.stats import MeanCI, mean_ci
from alignlab.core.technique import Technique, check_specs, make_technique

TECHNIQUE_KEY = "technique"
"""The cell parameter that names a technique's canonical spec (absent in baseline cells)."""


@dataclasses.dataclass(frozen=True)
class ExperimentConfig(BaseConfig):
    """Base of experiment configs: every experiment has a `techniques` grid axis."""

    techniques: tuple[str, ...] = ()
    """Techniques to compare with the baseline, each run on every compatible cell with the baseline's seeds
    (paired): NAME or NAME(key=value, ...), e.g. quantilizer(q=0.1); see `alignlab list technique`."""

    def __post_init__(self) -> None:
        for spec in self.techniques:
            make_technique(spec)  # a ConfigError names what is wrong


class Experiment:
    """Base class. Subclass it, set the class attributes, register it:

        @register("experiment", "my-thing-v0")
        class MyThing(Experiment):
            title = "..."; summary = "..."; source = "Author et al. 2024, ..."
            Config = MyConfig
            def cells(self): ...
            def run_cell(self, params, seed, workdir): ...
    """

    title: ClassVar[str] = ""
    """Human title for the report section."""
    summary: ClassVar[str] = ""
    """What the experiment tests, one paragraph (shown in the report and `alignlab list`)."""
    source: ClassVar[str] = ""
    """The paper or incident it reproduces."""
    specified_label: ClassVar[str] = "specified"
    """What the specified (proxy) objective is in this experiment."""
    intended_label: ClassVar[str] = "intended"
    """What the intended (true) objective is in this experiment."""
    tour: ClassVar[bool] = False
    """Part of `alignlab demo`'s tour (in its quick preset)."""
    slots: ClassVar[tuple[str, ...]] = ()
    """The technique slots this experiment exposes (see alignlab.core.technique.SLOTS)."""
    failure_mode: ClassVar[str] = ""
    """The failure mode this experiment measures: its column in the technique matrix."""
    benefit_label: ClassVar[str] = "intended objective"
    """What the with/without comparison's benefit measures (see `outcome`)."""
    capability_label: ClassVar[str] = "specified objective"
    """What the alignment tax measures (see `outcome`)."""
    reads_technique_cells: ClassVar[bool] = False
    """Whether `tables`, `figures` and `findings` get the technique cells too (default: baseline cells
    only; an experiment whose own analysis compares configurations that are techniques opts in)."""
    Config: ClassVar[type[BaseConfig]] = ExperimentConfig
    default_seeds: ClassVar[int] = 3
    quick_seeds: ClassVar[int] = 2
    registered_name: ClassVar[str] = ""

    def __init__(self, config: BaseConfig | None = None):
        self.config = config if config is not None else self.Config()
        self._techniques = check_specs(getattr(self.config, "techniques", ()), self.slots,
                                       f"experiment {self.registered_name or type(self).__name__}")

    @classmethod
    def smoke_config(cls) -> BaseConfig:
        """The config of the contract test's one-cell smoke run (default: the quick preset).
        Override where even one quick cell takes minutes on a fresh machine."""
        return cls.Config.quick()

    @property
    def name(self) -> str:
        return self.registered_name

    # -- the grid --------------------------------------------------------------------------

    def cells(self) -> list[dict[str, Any]]:
        """The configurations to run, each a complete JSON-serialisable parameter dict:
        everything `run_cell` reads, so its hash identifies the cell's result."""
        raise NotImplementedError

    def grid(self) -> list[dict[str, Any]]:
        """`cells()` (the baselines) plus, for each configured technique, every baseline cell it
        supports with the technique's canonical spec under TECHNIQUE_KEY. Baseline cells keep their
        parameters, so a technique cell and its baseline share everything else, seeds included."""
        base = self.cells()
        out = list(base)
        for tech in self._techniques:
            for params in base:
                if self.technique_supports(tech, params) is None:
                    out.append({**params, TECHNIQUE_KEY: tech.spec})
        return out

    def technique_supports(self, tech: Technique, params: dict[str, Any]) -> str | None:
        """None if `tech` applies to the baseline cell `params`, else why not. The default asks the
        technique; experiments add their own conditions (a slot some cells lack)."""
        return tech.supports(dict(params))

    @staticmethod
    def technique(params: dict[str, Any], slot: str | None = None) -> Technique | None:
        """The technique of a cell (None for a baseline cell, or when it acts on another slot)."""
        spec = params.get(TECHNIQUE_KEY)
        if not spec:
            return None
        tech = make_technique(spec)
        return tech if slot is None or tech.slot == slot else None

    def headline(self, records: list[RunRecord]) -> tuple[str, MeanCI] | None:
        """The one number that sums up the experiment's baseline records for the report's top table:
        (what it measures, mean and 95% interval). None where no single number means something."""
        return None

    @staticmethod
    def share(records: list[RunRecord], metric: str) -> MeanCI:
        """Mean and Student-t 95% interval of a 0/1 (or any) metric over records that have it."""
        return mean_ci(r.metrics[metric] for r in records if metric in r.metrics)

    def analysed(self, records: list[RunRecord]) -> list[RunRecord]:
        """The ok records the experiment's own tables, figures and findings read."""
        ok = [r for r in records if r.status == "ok"]
        return ok if self.reads_technique_cells else [r for r in ok if not r.config.get(TECHNIQUE_KEY)]

    def outcome(self, record: RunRecord) -> dict[str, float]:
        """The two numbers a with/without comparison pairs, in units comparable across this
        experiment's cells: `intended` (the benefit is its change) and `capability` (the alignment
        tax is its loss). Default: the reserved metrics `intended` and `specified`."""
        m = record.metrics
        return {"intended": m.get("intended", float("nan")), "capability": m.get("specified", float("nan"))}

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        """Run one configuration with one seed; write artifacts under `workdir`."""
        raise NotImplementedError

    def max_seeds(self, params: dict[str, Any]) -> int | None:
        """At most this many seeds (the first ones) for this configuration; None: every seed asked for.
        For cells that cost far more than the rest of the grid (RL on a language model)."""
        return None

    # -- the report section ----------------------------------------------------------------

    def table_columns(self) -> list[str]:
        """The parameter columns of the summary table (default: those that vary)."""
        return []

    def tables(self, records: list[RunRecord]) -> list[Table]:
        """Extra tables beyond the generic specified / intended summary."""
        return []

    def figures(self, records: list[RunRecord]) -> list[Figure]:
        return []

    def findings(self, records: list[RunRecord]) -> list[str]:
        """One line per claim of the source checked against these records."""
        return []
