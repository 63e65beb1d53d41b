"""Group records into per-configuration summaries (mean and 95% interval across seeds)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from alignlab.core.record import RESERVED_METRICS, RunRecord
from alignlab.core.stats import MeanCI, mean_ci


@dataclass
class ConfigSummary:
    config: dict[str, Any]
    config_hash: str
    seeds: int
    errors: int
    metrics: dict[str, MeanCI]


def summarize(records: list[RunRecord]) -> list[ConfigSummary]:
    """One summary per configuration, in first-seen order."""
    groups: dict[str, list[RunRecord]] = defaultdict(list)
    for rec in records:
        groups[rec.config_hash].append(rec)
    out = []
    for h, recs in groups.items():
        ok = [r for r in recs if r.status == "ok"]
        names = sorted({k for r in ok for k in r.metrics})
        out.append(ConfigSummary(
            config=recs[0].config, config_hash=h, seeds=len(ok), errors=len(recs) - len(ok),
            metrics={k: mean_ci(r.metrics[k] for r in ok if k in r.metrics) for k in names},
        ))
    return out


def varying_keys(summaries: list[ConfigSummary]) -> list[str]:
    keys: list[str] = []
    for s in summaries:
        for k in s.config:
            if k not in keys:
                keys.append(k)
    return [k for k in keys if len({repr(s.config.get(k)) for s in summaries}) > 1]


def overall(records: list[RunRecord]) -> dict[str, MeanCI]:
    """Reserved metrics averaged over every ok record of one experiment."""
    ok = [r for r in records if r.status == "ok"]
    return {k: mean_ci(r.metrics[k] for r in ok if k in r.metrics) for k in RESERVED_METRICS}
