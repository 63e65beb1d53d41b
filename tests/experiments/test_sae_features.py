"""The sae-features experiment end to end on the tiny random Llama (plumbing: shapes, metrics' ranges, the report
parts); the real numbers come from `alignlab run sae-features --quick` and benchmarks/bench_sae.py."""

from __future__ import annotations

import pytest

from alignlab.core.errors import ConfigError
from alignlab.core.record import RunRecord
from alignlab.experiments.sae_features import SAEFeatures, SAEFeaturesConfig


def test_config_errors():
    with pytest.raises(ConfigError, match="layers"):
        SAEFeaturesConfig(layers=())
    with pytest.raises(ConfigError, match="model"):
        SAEFeaturesConfig(model="/no/such/folder")
    with pytest.raises(ConfigError, match="steps"):
        SAEFeaturesConfig(steps=0)


def test_cell_and_report(tmp_path):
    from alignlab.lm.testing import cached_tiny_llama

    cfg = SAEFeaturesConfig(model=str(cached_tiny_llama()), layers=(1,), steps=10, batch_tokens=64, texts=12,
                            browser_items=3, browser_prompts=4, browser_features=2)
    exp = SAEFeatures(cfg)
    (params,) = exp.cells()
    res = exp.run_cell(params, 0, tmp_path)
    m = res.metrics
    assert m["explained_variance"] <= 1 and 0 <= m["dead_share"] <= 1 and 0 <= m["l0"] <= m["d_sae"] == 256
    assert m["ce_clean"] > 0 and m["ce_zero"] > 0 and (tmp_path / res.artifacts[0]).exists()
    groups = res.data["browser"]["groups"]
    assert [g["title"] for g in groups] == ["Features of sycophantic agreement", "Features of refusal"]
    syc = groups[0]["features"]
    assert len(syc) == 2 and syc[0]["r"] >= syc[1]["r"]
    rec = RunRecord(experiment="sae-features-v0", config=params, config_hash="x", seed=0, status="ok",
                    code_version="t", metrics=m, data=res.data)
    assert exp.tables([rec])[0].rows[0][0] == 1
    figs = exp.figures([rec])
    assert figs[0].svg.startswith("<svg") and 'class="feature-browser"' in figs[1].svg
    assert "<script" not in figs[1].svg and "http" not in figs[1].svg
    assert "explained variance" in exp.findings([rec])[0]
