"""Records as JSON or CSV (one row per record, metrics flattened as metric.<name>)."""

from __future__ import annotations

import csv
import io
import json

from alignlab.core.record import RunRecord


def to_json(records: list[RunRecord]) -> str:
    return json.dumps([json.loads(r.to_json()) for r in records], indent=1, sort_keys=True)


def to_csv(records: list[RunRecord]) -> str:
    config_keys = sorted({k for r in records for k in r.config})
    metric_keys = sorted({k for r in records for k in r.metrics})
    head = ["experiment", "config_hash", "seed", "status", "code_version", "run_id", "duration_s"]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(head + [f"config.{k}" for k in config_keys] + [f"metric.{k}" for k in metric_keys] + ["error"])
    for r in records:
        writer.writerow(
            [r.experiment, r.config_hash, r.seed, r.status, r.code_version, r.run_id, f"{r.duration_s:.4f}"]
            + [json.dumps(r.config[k]) if isinstance(r.config.get(k), (list, dict)) else r.config.get(k, "")
               for k in config_keys]
            + [r.metrics.get(k, "") for k in metric_keys]
            + [r.error or ""]
        )
    return buf.getvalue()
