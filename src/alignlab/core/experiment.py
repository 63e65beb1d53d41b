"""The experiment contract: a grid of cells (configuration x seed), how to run one cell,
and what its report section shows. One file per experiment under experiments/."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from alignlab.core.config import BaseConfig
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.section import Figure, Table


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
    Config: ClassVar[type[BaseConfig]] = BaseConfig
    default_seeds: ClassVar[int] = 3
    quick_seeds: ClassVar[int] = 2
    registered_name: ClassVar[str] = ""

    def __init__(self, config: BaseConfig | None = None):
        self.config = config if config is not None else self.Config()

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
