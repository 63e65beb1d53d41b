"""The result record: the only thing runs write and reports read (schema versioned).

Reserved metric names keep the gap comparable across experiments:
`specified` (the proxy objective), `intended` (the true objective) and
`gap` (= specified - intended, in the experiment's units).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

SCHEMA_VERSION = 1
RESERVED_METRICS = ("specified", "intended", "gap")
STATUSES = ("ok", "error")


@dataclasses.dataclass
class CellResult:
    """What an experiment's `run_cell` returns."""

    metrics: dict[str, float]
    """Scalar metrics; use the reserved names `specified`, `intended`, `gap` where they apply."""
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Small JSON-serialisable extras (curves, counts) the report may plot."""
    artifacts: list[str] = dataclasses.field(default_factory=list)
    """Paths of files written under the cell's folder, relative to the runs folder."""


@dataclasses.dataclass
class RunRecord:
    """One cell (configuration x seed) of one experiment, as stored."""

    experiment: str
    config: dict[str, Any]
    config_hash: str
    seed: int
    status: str
    code_version: str
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    artifacts: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    run_id: str = ""
    backend: str = ""
    started_at: float = 0.0
    duration_s: float = 0.0
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=_json_default)

    @classmethod
    def from_json(cls, text: str) -> "RunRecord":
        raw = json.loads(text)
        version = raw.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"record schema version {version} is not supported (expected {SCHEMA_VERSION})")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def clean_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Metrics as plain floats (NumPy scalars converted; NaN and inf kept as floats)."""
    return {str(key): float(value) for key, value in metrics.items()}


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """alignlab's version plus a hash of the code (not the prose) of every module of the package.

    The runner keys cells by a narrower version, of the code each cell can run
    (`alignlab.core.codeversion.CellVersions`); this one is for uses with no narrower scope."""
    from alignlab.core.codeversion import package_version

    return package_version()
