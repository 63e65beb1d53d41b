"""The RLHF remedies on the technique seam give the numbers the experiment's own sweeps gave: a reward-model
ensemble technique is the `ensemble` SIZE:AGGREGATE cell, a KL penalty on best-of-n is the tilt curve's point at
its beta; and the grid pairs each technique cell with its baseline."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alignlab.core.errors import ConfigError
from alignlab.core.experiment import TECHNIQUE_KEY
from alignlab.core.paired import base_key
from alignlab.core.record import RunRecord
from alignlab.core.technique import make_technique
from alignlab.experiments import rlhf_overoptimization as exp_mod
from alignlab.experiments.rlhf_pool import optimizer_settings, reward_model_settings
from alignlab.lm.testing import cached_tiny_llama


def tiny_config(model: str, **kw) -> exp_mod.RlhfOverConfig:
    return dataclasses.replace(
        exp_mod.RlhfOverConfig.quick(), **{**dict(
            model=model, dtype="float32", train_prompts=4, train_samples=4, test_prompts=3, pool_size=8,
            max_new_tokens=6, layer=-1, n_pairs=(30, 10), ensembles=("1:mean", "4:min")), **kw})


@pytest.fixture()
def tiny_model(tmp_path, monkeypatch):
    model = str(cached_tiny_llama())  # built once in the shared cache, before the pool cache moves to tmp_path
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    return model


def test_settings_dicts_and_apply():
    base = {"ensemble": "1:mean", "l2": 100.0, "optimizer": "best-of-n"}
    assert reward_model_settings(base) == {"size": 1, "aggregate": "mean", "k": 1.0, "l2": 100.0}
    treated = {**base, TECHNIQUE_KEY: make_technique("reward-model-ensemble(size=4, aggregate=min)").spec}
    assert reward_model_settings(treated) == {"size": 4, "aggregate": "min", "k": 1.0, "l2": 100.0}
    assert reward_model_settings({**base, "ensemble": "4:min"}) == reward_model_settings(treated)
    assert optimizer_settings(base) == {"optimizer": "best-of-n", "kl_beta": None}
    kl = make_technique("kl-penalty(beta=0.5)")
    assert optimizer_settings({**base, TECHNIQUE_KEY: kl.spec}) == {"optimizer": "best-of-n", "kl_beta": 0.5}
    rl = {**base, "optimizer": "grpo", "rl_beta": 0.02}
    assert optimizer_settings(rl)["kl_beta"] == 0.02
    assert optimizer_settings({**rl, TECHNIQUE_KEY: kl.spec}) == {"optimizer": "grpo", "kl_beta": 0.5}
    with pytest.raises(ConfigError):
        kl.apply({"optimizer": "q-learning"})
    with pytest.raises(ConfigError):
        make_technique("reward-model-ensemble(size=1)")
    with pytest.raises(ConfigError):
        make_technique("kl-penalty(beta=0)")
    assert kl.supports({"optimizer": "q-learning"}) and kl.supports({"agent": "sarsa"})
    assert kl.supports({"optimizer": "best-of-n"}) is None


def test_ensemble_technique_is_the_old_ensemble_cell(tiny_model, tmp_path):
    exp = exp_mod.RlhfOveroptimization(tiny_config(tiny_model, techniques=("reward-model-ensemble(size=4, "
                                                                           "aggregate=min)",)))
    grid = exp.grid()
    base = next(p for p in grid if p["ensemble"] == "1:mean" and p["rater_bias"] == 1.0 and p["n_pairs"] == 30
                and TECHNIQUE_KEY not in p)
    old = next(p for p in grid if p["ensemble"] == "4:min")
    treated = {**base, TECHNIQUE_KEY: "reward-model-ensemble-v0(aggregate=min, size=4)"}
    assert treated in grid and {**old, TECHNIQUE_KEY: treated[TECHNIQUE_KEY]} not in grid  # no stacking on 4:min
    for seed in (0, 1):
        got, want = exp.run_cell(treated, seed, tmp_path), exp.run_cell(old, seed, tmp_path)
        np.testing.assert_equal(got.metrics, want.metrics)  # exactly (NaN == NaN): same bootstrap stream, same fit
        np.testing.assert_equal(got.data, want.data)
    plain = exp.run_cell(base, 1, tmp_path).metrics
    assert plain["specified"] != want.metrics["specified"]  # the technique did change the reward model


def test_kl_penalty_on_best_of_n_is_the_tilt_at_its_beta(tiny_model, tmp_path):
    exp = exp_mod.RlhfOveroptimization(tiny_config(tiny_model))
    base = exp.cells()[0]
    plain = exp.run_cell(base, 0, tmp_path)
    for beta in (0.5, 2.0):
        j = exp_mod.TILT_BETAS.index(beta)
        res = exp.run_cell({**base, TECHNIQUE_KEY: make_technique(f"kl-penalty(beta={beta})").spec}, 0, tmp_path)
        m, d = res.metrics, plain.data
        assert m["intended"] == d["tilt_gold_gain"][j] and m["specified"] == d["tilt_proxy_gain"][j]
        assert m["kl_final"] ** 0.5 == pytest.approx(d["tilt_d"][j], abs=1e-12)
        assert m["gap"] == m["specified"] - m["intended"]
        assert set(m) == set(plain.metrics)  # the same metric names: technique and baseline cells pair
        # the best-of-n curve of the same pool is unchanged; only the cell's final policy differs
        np.testing.assert_equal(res.data, plain.data)
        assert m["gold_peak"] == plain.metrics["gold_peak"]
    assert plain.metrics["kl_final"] == plain.metrics["max_kl"]
    assert plain.metrics["specified"] == plain.data["proxy_gain"][-1]
    o = exp.outcome(RunRecord("rlhf-overoptimization-v0", base, "h", 0, "ok", "v", metrics=plain.metrics))
    assert o == {"intended": plain.metrics["intended"], "capability": plain.metrics["specified"]}


@pytest.mark.parametrize("spec", ["reward-model-ensemble(size=4)", "kl-penalty(beta=0.5)"])
def test_grid_pairs_technique_cells_with_identical_other_params(spec):
    config = dataclasses.replace(exp_mod.RlhfOverConfig(), techniques=(spec,))
    exp = exp_mod.RlhfOveroptimization(config)
    grid = exp.grid()
    base = [p for p in grid if TECHNIQUE_KEY not in p]
    treated = [p for p in grid if TECHNIQUE_KEY in p]
    assert base == exp.cells() and treated
    canon = make_technique(spec).spec
    keys = {base_key(p) for p in base}
    for p in treated:
        assert p[TECHNIQUE_KEY] == canon and base_key(p) in keys
        assert {k: v for k, v in p.items() if k != TECHNIQUE_KEY} in base
    opts = {p["optimizer"] for p in treated}
    if spec.startswith("reward-model"):  # the single-model baseline cells; DPO has no reward model in its loop
        assert all(p["ensemble"] == config.ensembles[0] for p in treated) and opts == {"best-of-n", "grpo"}
    else:  # every best-of-n cell, and the RL / DPO cells at the baseline KL penalty
        assert opts == {"best-of-n", "grpo", "dpo"}
        assert all(p["rl_beta"] == config.rl_betas[0] for p in treated if p["optimizer"] != "best-of-n")
        assert len([p for p in treated if p["optimizer"] == "best-of-n"]) == \
            len([p for p in base if p["optimizer"] == "best-of-n"])


def test_agent_techniques_skip_the_rlhf_cells():
    """The optimizer slot takes settings dicts here: techniques that wrap registered RL agents get no cell."""
    config = dataclasses.replace(exp_mod.RlhfOverConfig.quick(), techniques=("quantilizer",
                                                                              "safe-interruptibility-target"))
    exp = exp_mod.RlhfOveroptimization(config)
    assert exp.grid() == exp.cells()
    assert "RL agent" in exp.technique_supports(make_technique("quantilizer"), exp.cells()[0])
