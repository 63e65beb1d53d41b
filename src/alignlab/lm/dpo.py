"""Direct Preference Optimization on rater comparisons: a thin wrapper over TRL's DPOTrainer, with or without LoRA.

DPO (Rafailov et al. 2023, arXiv:2305.18290) fits the policy directly to comparisons with
loss -log sigmoid(beta [(log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x))]).
LoRA (Hu et al. 2021, arXiv:2106.09685) through peft: on this CPU it saves memory more than
time and needs a ~10x higher learning rate (docs/benchmarks.md). Train
from a plain safetensors folder: with ref_model=None TRL re-loads the reference from the path.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from alignlab.core import device
from alignlab.lm.models import use_bf16


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
    gradient_checkpointing: bool = True
    """Re-run the forward in the backward to save memory (TRL's default). On by default: turning it off did not
    make steps faster (see docs/benchmarks.md)."""
    precompute_ref_log_probs: bool = False
    """Compute the reference log-probs once before training (at set-up), so each step skips the reference
    forward (~25% of a step's FLOPs); the pass over the data is paid up front, so it saves time only when the
    data is seen more than once (more than one epoch)."""
    threads: int = 1
    """torch threads (default 1, not torch's default; see docs/benchmarks.md)."""
    seed: int = 0


def train(model_path: str, dataset, output_dir: str, settings: DPOSettings = DPOSettings(),
          callbacks: Any = None, **extra: Any):
    """Run TRL's DPOTrainer on a prompt/chosen/rejected dataset; returns the trainer (log in state.log_history).

    The dataset is in TRL's conversational preference format, as the caller builds it with
    `rewards.reward_models.comparisons_dataset` (rewards imports lm, never the other way)."""
    import torch
    from transformers import AutoTokenizer
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
                     gradient_checkpointing=settings.gradient_checkpointing,
                     precompute_ref_log_probs=settings.precompute_ref_log_probs, report_to="none",
                     save_strategy="no", logging_steps=1, seed=settings.seed, disable_tqdm=True,
                     **{**device.trainer_kwargs(), **extra})
    trainer = DPOTrainer(model=model_path, args=args, train_dataset=dataset, processing_class=tok,
                         peft_config=peft_config, callbacks=list(callbacks) if callbacks else None)
    trainer.train()
    return trainer
