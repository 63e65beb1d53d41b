"""rlhf-overoptimization's RL path: the TRL reward is the experiment's frozen reward model, the KL is exact, the
RL form of Gao's fit recovers known coefficients, and a GRPO cell runs end to end on a tiny random Llama."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

pytest.importorskip("trl")

from alignlab.core.record import RunRecord  # noqa: E402
from alignlab.experiments import rlhf_overoptimization as exp_mod  # noqa: E402
from alignlab.experiments import rlhf_rl  # noqa: E402
from alignlab.experiments.gao_fits import fit_gao  # noqa: E402
from alignlab.lm.testing import cached_tiny_llama  # noqa: E402
from alignlab.rewards import reward_models as rm  # noqa: E402


def tiny_config(model: str, **kw):
    return dataclasses.replace(
        exp_mod.RlhfOverConfig.quick(), **{**dict(
            model=model, dtype="float32", train_prompts=4, train_samples=4, test_prompts=2, pool_size=4,
            max_new_tokens=6, layer=-1, n_pairs=(30, 10), optimizers=("grpo",), rl_betas=(0.1,), rl_steps=2,
            rl_eval_every=1, rl_eval_samples=2, rl_batch=4, rl_generations=2, rl_lr=1e-3, rl_prompts=8), **kw})


def test_rl_fit_recovers_coefficients_with_noise():
    d = np.linspace(0.05, 4, 40)
    y = d * (0.6 - 0.25 * np.log(d))
    fit = fit_gao(np.r_[0.0, d], np.r_[0.0, y], form="rl")  # d = 0 (the initial policy) is allowed
    assert fit["alpha"] == pytest.approx(0.6) and fit["beta"] == pytest.approx(0.25)
    assert fit["d_peak"] == pytest.approx(math.exp(0.6 / 0.25 - 1)) and fit["r2"] == pytest.approx(1)
    noisy = fit_gao(d, y + np.random.default_rng(0).normal(0, 0.01, d.size), form="rl")
    assert noisy["alpha"] == pytest.approx(0.6, abs=0.03) and noisy["beta"] == pytest.approx(0.25, abs=0.02)
    assert 0.9 < noisy["r2"] < 1


def test_grid_has_rl_cells_only_when_asked():
    quick = exp_mod.RlhfOveroptimization(exp_mod.RlhfOverConfig.quick()).cells()
    assert all(c["optimizer"] == "best-of-n" and "rl_beta" not in c for c in quick)
    full = exp_mod.RlhfOveroptimization(exp_mod.RlhfOverConfig()).cells()
    rl_cells = [c for c in full if c["optimizer"] == "grpo"]
    assert sorted(c["rl_beta"] for c in rl_cells) == sorted(exp_mod.RlhfOverConfig().rl_betas)
    assert all(c["ensemble"] == full[0]["ensemble"] for c in rl_cells)  # RL uses the baseline reward model
    with pytest.raises(Exception):
        exp_mod.RlhfOverConfig(optimizers=("ppo",))
    with pytest.raises(Exception):
        exp_mod.RlhfOverConfig(rl_batch=6, rl_generations=4)
    with pytest.raises(Exception):
        exp_mod.RlhfOverConfig(rl_seeds=0)


def test_rl_cells_run_only_rl_seeds_seeds():
    """RL cells cost minutes each: the runner's plan gives them the first rl_seeds seeds, best-of-n every seed."""
    from alignlab.core.runner import plan

    exp = exp_mod.RlhfOveroptimization(exp_mod.RlhfOverConfig(optimizers=("best-of-n", "dpo"), rl_seeds=2))
    grid = plan(exp, 5)
    seeds = {}
    for params, _, seed in grid:
        seeds.setdefault(params["optimizer"], set()).add(seed)
    assert seeds == {"best-of-n": {0, 1, 2, 3, 4}, "dpo": {0, 1}}
    assert len(plan(exp, 1)) == len(exp.cells())  # never more seeds than asked for


@pytest.fixture()
def tiny_prep(tmp_path, monkeypatch):
    model = str(cached_tiny_llama())  # built once in the shared cache, before the pool cache moves to tmp_path
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    exp = exp_mod.RlhfOveroptimization(tiny_config(model))
    params = exp.cells()[0]
    return exp, params, exp_mod.prepare(params, 0)


def test_reward_function_is_the_reward_model(tiny_prep):
    from alignlab.lm.models import ModelSpec, load

    _, params, prep = tiny_prep
    model, tok = load(ModelSpec(params["model"], dtype="float32"))
    item = prep["test_items"][0]
    reward = rlhf_rl.FrozenRMReward(model, tok, prep["model"], {item.id: item}, params["layer"], prep["gold_config"])
    prompt = item.messages()
    comps = [tok("Paris.<|im_end|>", add_special_tokens=False)["input_ids"],
             tok("I think it is maybe Lyon", add_special_tokens=False)["input_ids"]]
    got = reward([prompt, prompt], ["x", "y"], completion_ids=comps, item_id=[item.id, item.id])
    p_ids = tok(tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True),
                add_special_tokens=False)["input_ids"]
    want = prep["model"].score(rm.hidden_features(model, [p_ids, p_ids], comps, layer=params["layer"]))
    assert got == pytest.approx(want.tolist(), rel=1e-6) and got[0] != got[1]
    assert len(reward.history) == 1 and reward.history[0]["words"] == pytest.approx((1 + 6) / 2)
    # the same features the pool's reward model was trained on: pool completions score as in the pool
    pool = prep["pool"]
    te0 = prep["te"][0]
    pool_ids = tok(pool["texts"][te0], add_special_tokens=False)["input_ids"]
    assert np.isfinite(reward.score_ids([p_ids], [pool_ids])).all()


def test_sequence_kl_is_zero_for_the_same_model_and_positive_otherwise(tiny_prep):
    import torch
    from transformers import AutoModelForCausalLM

    _, params, _ = tiny_prep
    a = AutoModelForCausalLM.from_pretrained(params["model"], dtype=torch.float32).eval()
    b = AutoModelForCausalLM.from_pretrained(params["model"], dtype=torch.float32).eval()
    prompts, comps = [[1, 2, 3], [4, 5]], [[6, 7, 8, 9], [10]]
    assert rlhf_rl.sequence_kl(a, b, prompts, comps) == pytest.approx([0, 0], abs=1e-6)
    with torch.no_grad():
        for p in b.parameters():
            p.add_(0.05 * torch.randn_like(p))
    kl = rlhf_rl.sequence_kl(a, b, prompts, comps)
    assert np.all(kl > 0) and kl[0] > 0


def test_rl_cell_end_to_end(tiny_prep, tmp_path):
    exp, params, _ = tiny_prep
    res = exp.run_cell(params, 0, tmp_path / "cell")
    m, d = res.metrics, res.data
    assert m["gap"] == pytest.approx(m["specified"] - m["intended"])
    assert d["steps"] == [0, 1, 2] and d["kl"][0] == pytest.approx(0, abs=1e-6) and d["kl"][-1] > 0
    assert d["proxy_gain"][0] == 0 and d["gold_gain"][0] == 0
    assert len(d["train"]) == 2 and all(math.isfinite(t["kl_token"]) for t in d["train"])
    assert m["rl_seconds_per_step"] > 0 and {"gold_alpha", "gold_r2", "rm_acc_rater"} <= set(m)
    rec = RunRecord("rlhf-overoptimization-v0", params, "h", 0, "ok", "v", metrics=m, data=d)
    tables = exp.tables([rec])
    assert [t.title for t in tables][-2].startswith("Gao et al. RL fits") and len(tables[-1].rows) == 3
    assert len(exp.figures([rec])) == 2 and exp.findings([rec])[0].startswith("RL (grpo, KL penalty 0.1)")


@pytest.mark.parametrize("optimizer", ["dpo", "dpo-lora"])
def test_dpo_cell_trains_on_the_raters_comparisons(tmp_path, monkeypatch, optimizer):
    """optimizer dpo / dpo-lora: TRL's DPOTrainer on the cell's rater comparisons (chosen = the rater's pick),
    every weight or LoRA adapters, evaluated along training like the RL cells."""
    model = str(cached_tiny_llama())
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    exp = exp_mod.RlhfOveroptimization(tiny_config(model, optimizers=(optimizer,)))
    params = exp.cells()[0]
    assert params["optimizer"] == optimizer
    prep = exp_mod.prepare(params, 0)
    texts = set(prep["pool"]["texts"])
    assert len(prep["comparisons"]) == params["n_pairs"]
    assert all(c in texts and r in texts for _, c, r in prep["comparisons"])
    res = exp.run_cell(params, 0, tmp_path / "cell")
    d = res.data
    assert d["steps"] == [0, 1, 2] and d["kl"][0] == pytest.approx(0, abs=1e-6) and d["kl"][-1] > 0
    assert d["train"] == [] and res.metrics["rl_seconds_per_step"] > 0


def test_kl_penalty_technique_sets_trls_beta(tiny_prep, tmp_path, monkeypatch):
    """An RL cell with kl-penalty(beta=B) trains with TRL's beta = B instead of its rl_beta (same cell otherwise)."""
    from alignlab.core.technique import make_technique
    from alignlab.lm import rl

    _, params, prep = tiny_prep
    seen = []

    class Stop(Exception):
        pass

    def fake_train(path, reward, data, output_dir, config, callbacks=None, **kw):
        seen.append(config.beta)
        raise Stop

    monkeypatch.setattr(rl, "train", fake_train)
    spec = make_technique("kl-penalty(beta=0.5)").spec
    for cell in (params, {**params, "technique": spec}):
        with pytest.raises(Stop):
            rlhf_rl.run(cell, 0, tmp_path / "cell", prep)
    assert seen == [params["rl_beta"], 0.5]
