"""rlhf-overoptimization: Gao fits recover known coefficients; the whole pipeline runs on a tiny random Llama."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alignlab.core.errors import ConfigError
from alignlab.experiments import rlhf_overoptimization as exp_mod
from alignlab.experiments.gao_fits import fit_gao
from alignlab.lm.testing import cached_tiny_llama


def test_gao_fits_recover_coefficients():
    d = np.linspace(0.1, 3, 30)
    fit = fit_gao(d, d * (0.8 - 0.2 * d))
    assert fit["alpha"] == pytest.approx(0.8) and fit["beta"] == pytest.approx(0.2) and fit["r2"] == pytest.approx(1)
    assert fit["d_peak"] == pytest.approx(2.0)
    rl = fit_gao(d, d * (0.5 - 0.3 * np.log(d)), form="rl")
    assert rl["alpha"] == pytest.approx(0.5) and rl["beta"] == pytest.approx(0.3)
    assert rl["d_peak"] == pytest.approx(np.exp(0.5 / 0.3 - 1))


def test_config_validation_and_grid():
    with pytest.raises(ConfigError):
        exp_mod.RlhfOverConfig(ensembles=("3:median",))
    with pytest.raises(ConfigError):
        exp_mod.RlhfOverConfig(kinds=("poetry",))
    quick = exp_mod.RlhfOveroptimization(exp_mod.RlhfOverConfig.quick()).cells()
    assert len(quick) == 5 and quick[0]["rater_bias"] == 1.0 and quick[0]["ensemble"] == "1:mean"
    full = exp_mod.RlhfOverConfig(factorial=True, rater_bias=(1.0, 0.0), n_pairs=(10, 20), ensembles=("1:mean",))
    rl = [o for o in full.optimizers if o != "best-of-n"]
    assert len(exp_mod.RlhfOveroptimization(full).cells()) == 4 + len(rl) * len(full.rl_betas)  # + RL cells


def test_pipeline_on_tiny_model(tmp_path, monkeypatch):
    path = cached_tiny_llama()
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    config = dataclasses.replace(
        exp_mod.RlhfOverConfig.quick(), model=str(path), dtype="float32", train_prompts=4, train_samples=4,
        test_prompts=3, pool_size=8, max_new_tokens=6, layer=-1, n_pairs=(30, 10),
    )
    exp = exp_mod.RlhfOveroptimization(config)
    records = []
    from alignlab.core.record import RunRecord

    for params in exp.cells():
        res = exp.run_cell(params, 0, tmp_path)
        assert set(res.metrics) >= {"specified", "intended", "gap", "rm_acc_rater", "rm_acc_gold", "gold_r2"}
        assert res.metrics["gap"] == pytest.approx(res.metrics["specified"] - res.metrics["intended"])
        assert res.data["ns"] == [1, 2, 4, 8] and res.data["proxy_gain"][0] == 0
        assert res.data["proxy_gain"][-1] >= res.data["proxy_gain"][1] - 1e-9  # best-of-n raises the proxy
        records.append(RunRecord("rlhf-overoptimization-v0", params, "h", 0, "ok", "v",
                                 metrics=res.metrics, data=res.data))
    again = exp.run_cell(exp.cells()[0], 0, tmp_path)
    assert again.metrics == pytest.approx(records[0].metrics, nan_ok=True)  # pool cached, seeded
    assert len(list((tmp_path / "cache" / "rlhf-pools").iterdir())) == 1
    assert len(exp.tables(records)) == 2 and len(exp.figures(records)) == 3
    assert any(f.startswith("baseline") for f in exp.findings(records))
