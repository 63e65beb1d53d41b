"""lm.dpo: the CPU log-prob head against TRL's chunked kernel (values and gradients), its swap into TRL and back,
the gradient-checkpointing and attention defaults, and a DPO run giving the same log-probs with either head."""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("trl")

from trl.trainer import utils as trl_utils  # noqa: E402

from alignlab.lm import dpo  # noqa: E402
from alignlab.lm.testing import cached_tiny_llama  # noqa: E402
from alignlab.rewards import reward_models as rm  # noqa: E402

OUTPUTS = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1")


def _run(fn, autocast: bool):
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(37, 24, generator=gen).requires_grad_()
    weight = (0.3 * torch.randn(301, 24, generator=gen)).requires_grad_()
    bias = torch.randn(301, generator=gen).requires_grad_()
    targets = torch.randint(0, 301, (37,), generator=gen)
    targets[:15] = (hidden @ weight.t() + bias).argmax(-1)[:15].detach()  # some targets are the top token
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = fn.apply(hidden, weight, bias, targets, 0.7, 128, None, 1.3, OUTPUTS)
    (out[0].sum() + 0.3 * out[1].sum()).backward()  # a gradient through the entropy too
    return [x.float() for x in out] + [hidden.grad, weight.grad, bias.grad]


@pytest.mark.parametrize("autocast", [False, True])
def test_dense_head_matches_trl_kernel(autocast):
    ours = _run(dpo._dense_log_probs_class(), autocast)
    trl = _run(trl_utils._ChunkedLogProbFunction, autocast)
    names = list(OUTPUTS) + ["grad hidden", "grad weight", "grad bias"]
    for name, a, b in zip(names, ours, trl):
        # fp32: rounding only; bf16: the gradients are one bf16 GEMM here, fp32-accumulated chunks in TRL
        tol = 2e-2 if autocast and name.startswith("grad") else 1e-4
        assert torch.allclose(a, b, rtol=tol, atol=tol * b.abs().max().item()), (name, (a - b).abs().max())
    assert ours[4].any() and not ours[4].all()  # is_top1 is a real mix, equal to TRL's


def test_head_swapped_into_trl_only_while_training(monkeypatch):
    original = trl_utils._ChunkedLogProbFunction
    hidden, weight = torch.randn(4, 8, requires_grad=True), torch.randn(50, 8)
    targets = torch.tensor([1, 2, 3, 4])
    with dpo.cpu_log_prob_head():
        swapped = trl_utils._ChunkedLogProbFunction
        assert swapped is not original
        lp = swapped.apply(hidden, weight, None, targets, 1.0, 32, None, 1.0, ("log_probs",))[0]
        assert type(lp.grad_fn).__name__ == "DenseLogProbsBackward"
        capped = swapped.apply(hidden, weight, None, targets, 1.0, 32, 30.0, 1.0, ("log_probs",))[0]
        assert type(capped.grad_fn).__name__ != "DenseLogProbsBackward"  # soft-capped logits: TRL's kernel
        monkeypatch.setattr(dpo, "DENSE_HEAD_MAX_LOGITS", 100)  # 4 x 50 logits > 100: TRL's kernel
        big = swapped.apply(hidden, weight, None, targets, 1.0, 32, None, 1.0, ("log_probs",))[0]
        assert type(big.grad_fn).__name__ != "DenseLogProbsBackward"
        assert torch.allclose(big, lp, atol=1e-5)
    assert trl_utils._ChunkedLogProbFunction is original


def test_checkpointing_and_attention_defaults(tmp_path):
    assert not dpo.use_checkpointing(None, str(tmp_path)) and dpo.use_checkpointing(True, str(tmp_path))
    with open(tmp_path / "model.safetensors", "wb") as fh:
        fh.truncate(dpo.CHECKPOINTING_ABOVE_BYTES + 1)  # sparse: no disk used
    assert dpo.use_checkpointing(None, str(tmp_path)) and not dpo.use_checkpointing(False, str(tmp_path))
    os.remove(tmp_path / "model.safetensors")
    assert not dpo.use_checkpointing(None, "HuggingFaceTB/not-a-folder")
    assert dpo.model_init_kwargs({}, None) == {"model_init_kwargs": {"attn_implementation": "eager"}}
    assert dpo.model_init_kwargs({"model_init_kwargs": {"attn_implementation": "sdpa"}}, None)[
        "model_init_kwargs"]["attn_implementation"] == "sdpa"
    assert dpo.model_init_kwargs({"seed": 1}, "sdpa") == {"seed": 1, "model_init_kwargs":
                                                          {"attn_implementation": "sdpa"}}


def test_dpo_log_probs_equal_with_either_head(tmp_path, monkeypatch):
    data = rm.comparisons_dataset(["What is 2 plus 3?", "Capital of Peru?"], ["5.", "Lima."], ["6.", "Cusco."])
    tiny = str(cached_tiny_llama())
    settings = dpo.DPOSettings(max_steps=2, batch_size=2, learning_rate=1e-3, bf16=False)
    ours = dpo.train(tiny, data, str(tmp_path / "a"), settings)
    assert ours.args.gradient_checkpointing is False  # a small model: no recompute
    assert ours.model.config._attn_implementation == "eager"
    monkeypatch.setattr(dpo, "DENSE_HEAD_MAX_LOGITS", 0)  # every call falls back to TRL's kernel
    theirs = dpo.train(tiny, data, str(tmp_path / "b"), settings)
    keys = ["loss", "logps/chosen", "logps/rejected", "rewards/margins", "entropy", "mean_token_accuracy"]
    a = [e for e in ours.state.log_history if "loss" in e]
    b = [e for e in theirs.state.log_history if "loss" in e]
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):  # the second step checks the gradients moved the weights the same way
        for k in keys:
            assert x[k] == pytest.approx(y[k], rel=1e-3, abs=1e-4), (k, x[k], y[k])
