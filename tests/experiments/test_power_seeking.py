"""power-seeking-v0 on a small grid: the avoid-shutdown share exceeds one half and grows with gamma,
the canonical closed form agrees with the sampled share, and the report renders."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignlab.core.errors import ConfigError
from alignlab.core.record import RunRecord
from alignlab.core.registry import get

CLS = get("experiment", "power-seeking-v0")


def run(config) -> list[RunRecord]:
    exp = CLS(config)
    out = []
    for i, params in enumerate(exp.grid()):
        res = exp.run_cell(params, 0, Path("."))
        out.append(RunRecord(experiment=exp.name, config=params, config_hash=str(i), seed=0, status="ok",
                             code_version="t", metrics=res.metrics, data=res.data))
    return out


def test_shutdown_share_above_half_and_rising():
    cfg = CLS.Config(envs=("island-navigation-v0",), power_gammas=(0.9,), power_samples=300,
                     cases=("canonical", "shutdown-button-v0"), gammas=(0.1, 0.9), samples=4000)
    recs = run(cfg)
    exp = CLS(cfg)
    for case in ("canonical", "shutdown-button-v0"):
        lo, hi = (next(r.metrics for r in recs if r.config.get("case") == case and r.config["gamma"] == g)
                  for g in (0.1, 0.9))
        assert lo["avoid"] - 2 * lo["avoid_se"] > 0.5 and hi["avoid"] > lo["avoid"] + 2 * hi["avoid_se"]
        assert abs(hi["power_shutdown"] - 0.5) < 4 * hi["power_shutdown_se"]
        assert lo["intended"] == pytest.approx(1 - lo["avoid"])
    canon = [r.metrics for r in recs if r.config.get("case") == "canonical"]
    assert all(abs(m["avoid"] - m["avoid_exact"]) < 4 * m["avoid_se"] for m in canon)
    findings = " ".join(exp.findings(recs))
    assert "non-decreasing in gamma" in findings and "above 1/2 (lower 95% bound, seeds pooled) at 2/2" in findings
    assert len(exp.figures(recs)) == 2 and len(exp.tables(recs)) == 2


def test_bad_config_is_refused():
    with pytest.raises(ConfigError, match="unknown cases"):
        CLS.Config(cases=("nope",))
    with pytest.raises(ConfigError, match="gammas"):
        CLS.Config(gammas=(1.0,))
