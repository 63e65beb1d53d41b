"""Direct Preference Optimization on rater comparisons: a thin wrapper over TRL's DPOTrainer, with or without LoRA.

DPO (Rafailov et al. 2023, arXiv:2305.18290) fits the policy directly to comparisons with
loss -log sigmoid(beta [(log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x))]).
LoRA (Hu et al. 2021, arXiv:2106.09685) through peft: on this CPU it saves memory more than
time and needs a ~10x higher learning rate (docs/benchmarks.md). Train
from a plain safetensors folder: with ref_model=None TRL re-loads the reference from the path. On the CPU the
step runs without gradient checkpointing for small models, with eager attention, and with TRL's fused LM head
computed as one GEMM (`DenseLogProbs`, same values): together 1.5x faster per step (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from typing import Any

from alignlab.core import device
from alignlab.lm.models import use_bf16

CHECKPOINTING_ABOVE_BYTES = 2 * 1024 ** 3
"""`gradient_checkpointing=None` turns checkpointing on only for models whose safetensors weigh more than this
(about 500 M fp32 / 1 B bf16 parameters): below it the activations of a DPO batch fit easily in memory and the
recomputed forward is pure cost (docs/benchmarks.md)."""
DENSE_HEAD_MAX_LOGITS = 256 * 1024 ** 2
"""Largest positions x vocabulary for which the CPU log-prob head keeps the logits (bf16: 512 MB, and as much again
for their gradient in the backward; ~5400 positions of SmolLM2's 49152-token vocabulary); larger batches fall back
to TRL's chunked head."""


@dataclasses.dataclass(frozen=True)
class DPOSettings:
    beta: float = 0.1
    """Strength of the implicit KL constraint to the reference policy."""
    lora: bool = False
    """Train LoRA adapters (peft) instead of every weight."""
    lora_rank: int = 8
    learning_rate: float = 5e-7
    """For full fine-tuning; LoRA uses 10x this unless set explicitly."""
    batch_size: int = 4
    max_steps: int = 2
    max_length: int = 128
    bf16: bool | None = None
    """bf16 autocast (weights stay fp32); None: where bf16 is native (`models.native_bf16`): faster than fp32
    where native, emulated and far slower elsewhere (see docs/benchmarks.md)."""
    gradient_checkpointing: bool | None = None
    """Re-run the forward in the backward to save memory (TRL's default). None: only for models larger than
    `CHECKPOINTING_ABOVE_BYTES` of weights; for SmolLM2-135M on one CPU core the recompute made a DPO step 8% and a
    reward-model step 27% slower (docs/benchmarks.md)."""
    precompute_ref_log_probs: bool = False
    """Compute the reference log-probs once before training (at set-up), so each step skips the reference
    forward (~25% of a step's FLOPs); the pass over the data is paid up front, so it saves time only when the
    data is seen more than once (more than one epoch)."""
    attn_implementation: str | None = None
    """transformers attention ('eager', 'sdpa', ...); None: `default_attention()` ('eager' on the CPU)."""
    threads: int = 1
    """torch threads (default 1, not torch's default; see docs/benchmarks.md)."""
    seed: int = 0


def weight_bytes(model_path: str) -> int:
    """Bytes of the model folder's safetensors (0 where there are none, e.g. a hub name)."""
    if not os.path.isdir(model_path):
        return 0
    return sum(os.path.getsize(os.path.join(model_path, f)) for f in os.listdir(model_path)
               if f.endswith(".safetensors"))


def use_checkpointing(flag: bool | None, model_path: str) -> bool:
    """A gradient-checkpointing setting where None means 'for models above `CHECKPOINTING_ABOVE_BYTES`'."""
    return weight_bytes(model_path) > CHECKPOINTING_ABOVE_BYTES if flag is None else bool(flag)


def default_attention(name: str | None = None) -> str | None:
    """The attention implementation to train with: `name` where given; else 'eager' on the CPU, where PyTorch's SDPA
    flash-attention kernel was measured slower for training at DPO lengths (~100 tokens: its backward took ~50 ms
    a layer for 8 sequences on one core, docs/benchmarks.md), and transformers' default (None) on a GPU."""
    if name is not None:
        return name
    return None if device.is_cuda(device.resolve()) else "eager"


def model_init_kwargs(extra: dict[str, Any], attn_implementation: str | None) -> dict[str, Any]:
    """`extra` with TRL's `model_init_kwargs` given the attention implementation (`default_attention`), unless the
    caller set one there."""
    attention = default_attention(attn_implementation)
    if attention is None:
        return extra
    init = dict(extra.get("model_init_kwargs") or {})
    init.setdefault("attn_implementation", attention)
    return {**extra, "model_init_kwargs": init}


def _dense_log_probs_class():
    import torch

    class DenseLogProbs(torch.autograd.Function):
        """Per-token log-probabilities of `hidden @ weight.T` (and the metrics TRL asks for) from whole [N, V] logits
        in one matmul, for the CPU: TRL's `ChunkedLogProbFunction` folds vocabulary tiles with a dozen elementwise
        passes per tile and, off CUDA, computes its backward GEMMs in fp32 after recomputing the tiles; measured on
        SmolLM2-135M it took about half of a DPO step (docs/benchmarks.md). Same inputs and outputs; the logits are
        kept (in the compute dtype) for the backward instead of recomputed, the softmax work runs on blocks of rows
        that stay in cache, and each gradient is one GEMM (fp32 accumulation inside oneDNN, the result in the
        compute dtype, as autograd's own bf16 Linear gives it)."""

        @staticmethod
        def forward(ctx, hidden, weight, bias, targets, temperature, chunk_size, softcap=None, logit_scale=1.0,
                    outputs=("log_probs",)):
            ctx.set_materialize_grads(False)
            dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else hidden.dtype
            logits = torch.mm(hidden.to(dtype), weight.to(dtype).t())
            if bias is not None:
                logits += bias.to(dtype)
            scale = logit_scale / temperature
            n = logits.shape[0]
            log_probs, log_z = logits.new_empty(n, dtype=torch.float32), logits.new_empty(n, dtype=torch.float32)
            extra = {k: logits.new_empty(n, dtype=torch.bool if k == "is_top1" else torch.float32)
                     for k in ("entropy", "log_sum_sq_probs", "mean_logits", "is_top1") if k in outputs}
            with torch.autocast("cpu", enabled=False):
                for rows in _row_blocks(n, logits.shape[1]):
                    z = logits[rows].float() if scale == 1.0 else logits[rows].float() * scale
                    log_p = torch.log_softmax(z, -1)
                    t = targets[rows].unsqueeze(1)
                    log_probs[rows] = log_p.gather(1, t).squeeze(1)
                    log_z[rows] = z.gather(1, t).squeeze(1) - log_probs[rows]
                    if "entropy" in extra:
                        extra["entropy"][rows] = -(torch.exp(log_p) * log_p).sum(-1)
                    if "log_sum_sq_probs" in extra:
                        extra["log_sum_sq_probs"][rows] = torch.logsumexp(2 * log_p, -1)
                    if "mean_logits" in extra:
                        extra["mean_logits"][rows] = z.mean(-1)
                    if "is_top1" in extra:  # argmax returns the first maximum, as TRL's kernel counts ties
                        extra["is_top1"][rows] = z.argmax(-1) == targets[rows]
            entropy = extra.get("entropy")
            ctx.save_for_backward(hidden, weight, bias, targets, logits, log_z, log_z if entropy is None else entropy)
            ctx.scale, ctx.dtype = scale, dtype
            done = [extra[k] for k in ("log_sum_sq_probs", "mean_logits", "is_top1") if k in extra]
            ctx.mark_non_differentiable(*done)
            return (log_probs, entropy, extra.get("log_sum_sq_probs"), extra.get("mean_logits"),
                    extra.get("is_top1"))

        @staticmethod
        def backward(ctx, grad_log_probs, grad_entropy, *_):
            hidden, weight, bias, targets, logits, log_z, entropy = ctx.saved_tensors
            grad = torch.empty_like(logits)  # d loss / d logits, in the compute dtype
            grad_bias = torch.zeros(logits.shape[1]) if ctx.needs_input_grad[2] else None
            for rows in _row_blocks(*logits.shape):
                log_p = logits[rows].to(torch.float32, copy=True)
                if ctx.scale != 1.0:
                    log_p.mul_(ctx.scale)
                log_p.sub_(log_z[rows].unsqueeze(1))
                p = torch.exp(log_p)
                g = torch.zeros_like(p)
                if grad_log_probs is not None:  # d log p_target / dz_j = 1[j = target] - p_j
                    gl = grad_log_probs[rows].float().unsqueeze(1)
                    g.addcmul_(p, gl, value=-1.0).scatter_add_(1, targets[rows].unsqueeze(1), gl)
                if grad_entropy is not None:  # d entropy / dz_j = -p_j (log p_j + entropy)
                    g.sub_(p * (log_p + entropy[rows].unsqueeze(1)) * grad_entropy[rows].float().unsqueeze(1))
                if ctx.scale != 1.0:
                    g.mul_(ctx.scale)
                if grad_bias is not None:
                    grad_bias += g.sum(0)
                grad[rows] = g
            need_hidden, need_weight = ctx.needs_input_grad[:2]
            grad_hidden = torch.mm(grad, weight.to(ctx.dtype)).to(hidden.dtype) if need_hidden else None
            grad_weight = torch.mm(grad.t(), hidden.to(ctx.dtype)).to(weight.dtype) if need_weight else None
            grad_bias = grad_bias.to(bias.dtype) if grad_bias is not None else None
            return grad_hidden, grad_weight, grad_bias, None, None, None, None, None, None

    return DenseLogProbs


def _row_blocks(rows: int, width: int, elements: int = 1 << 19):
    """Slices of about `elements` fp32 values (2 MB: they stay in cache across a block's elementwise passes)."""
    step = max(1, elements // max(width, 1))
    return [slice(i, min(i + step, rows)) for i in range(0, rows, step)]


@contextlib.contextmanager
def cpu_log_prob_head():
    """While training: TRL's fused LM head computes its log-probs with `DenseLogProbs` on the CPU (where the
    logits fit `DENSE_HEAD_MAX_LOGITS` and there is no logit soft-cap), with TRL's own chunked kernel elsewhere.
    TRL looks the function up in `trl.trainer.utils` at each call, so it is swapped there and restored after (one
    training per process at a time, as alignlab's runner runs them)."""
    from trl.trainer import utils as trl_utils

    original = getattr(trl_utils, "_ChunkedLogProbFunction", None)
    if original is None:  # another TRL layout: keep TRL's head
        yield
        return
    dense = _dense_log_probs_class()

    class Dispatch:
        @staticmethod
        def apply(hidden, weight, bias, targets, temperature, chunk_size, softcap=None, logit_scale=1.0,
                  outputs=("log_probs",)):
            fn = original
            if (hidden.device.type == "cpu" and softcap is None
                    and hidden.shape[0] * weight.shape[0] <= DENSE_HEAD_MAX_LOGITS):
                fn = dense
            return fn.apply(hidden, weight, bias, targets, temperature, chunk_size, softcap, logit_scale, outputs)

    trl_utils._ChunkedLogProbFunction = Dispatch
    try:
        yield
    finally:
        trl_utils._ChunkedLogProbFunction = original


@contextlib.contextmanager
def quiet_trl():
    """Silence transformers' FutureWarnings about its renamed properties (`is_gradient_checkpointing` and the like),
    which TRL's trainers and PEFT's model wrappers trigger on every use: not ours to fix, and they garble CLI output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def train(model_path: str, dataset, output_dir: str, settings: DPOSettings = DPOSettings(),
          callbacks: Any = None, **extra: Any):
    """Run TRL's DPOTrainer on a prompt/chosen/rejected dataset; returns the trainer (log in state.log_history).

    The dataset is in TRL's conversational preference format, as the caller builds it with
    `rewards.reward_models.comparisons_dataset` (rewards imports lm, never the other way)."""
    import torch
    from transformers import AutoTokenizer, PrinterCallback
    from trl import DPOConfig, DPOTrainer

    torch.set_num_threads(settings.threads)
    tok = AutoTokenizer.from_pretrained(model_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    peft_config = None
    lr = settings.learning_rate
    if settings.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings.lora_rank, lora_alpha=2 * settings.lora_rank, lora_dropout=0.0,
                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
        lr = lr * 10
    args = DPOConfig(output_dir=output_dir, beta=settings.beta, learning_rate=lr,
                     per_device_train_batch_size=settings.batch_size, max_steps=settings.max_steps,
                     max_length=settings.max_length, bf16=use_bf16(settings.bf16),
                     activation_checkpointing=use_checkpointing(settings.gradient_checkpointing, model_path),
                     precompute_ref_log_probs=settings.precompute_ref_log_probs, report_to="none",
                     save_strategy="no", logging_steps=1, seed=settings.seed, disable_tqdm=True,
                     **{**device.trainer_kwargs(), **model_init_kwargs(extra, settings.attn_implementation)})
    with cpu_log_prob_head(), quiet_trl():
        trainer = DPOTrainer(model=model_path, args=args, train_dataset=dataset, processing_class=tok,
                             peft_config=peft_config, callbacks=list(callbacks) if callbacks else None)
        trainer.remove_callback(PrinterCallback)  # no dict per step on stdout: the log is trainer.state.log_history
        trainer.train()
    return trainer
