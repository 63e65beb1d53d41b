"""RL fine-tuning against a reward with a KL penalty: thin wrappers over TRL's GRPOTrainer and RLOOTrainer.

GRPO (Shao et al. 2024, arXiv:2402.03300) and RLOO (Ahmadian et al. 2024, arXiv:2402.14740)
optimise a reward minus beta * KL(pi || pi_ref). TRL 1.16 has no PPO; GRPO/RLOO are its
maintained on-policy trainers. beta defaults to > 0 here (TRL's default 0 skips the
reference model and logs no KL, and measuring KL is the point). Always train from a plain
safetensors folder: TRL re-loads the reference model from the model's path.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from alignlab.core import device
from alignlab.core.errors import ConfigError
from alignlab.lm.models import use_bf16


@dataclasses.dataclass(frozen=True)
class RLConfig:
    algorithm: str = "grpo"
    """grpo or rloo."""
    beta: float = 0.05
    """KL penalty coefficient (> 0 so the KL to the initial policy is measured)."""
    num_generations: int = 4
    """Completions per prompt (the group for the baseline)."""
    max_completion_length: int = 32
    """Longest completion sampled during training."""
    batch_size: int = 4
    """Completions per step (a multiple of num_generations)."""
    max_steps: int = 2
    learning_rate: float = 1e-6
    temperature: float = 0.8
    bf16: bool | None = None
    """bf16 autocast; None: where bf16 is native (`models.native_bf16`): faster than fp32 where native, emulated
    and far slower elsewhere (see docs/benchmarks.md)."""
    threads: int = 1
    seed: int = 0


def prompts_dataset(prompts: Sequence[str], **columns: Sequence[Any]):
    """Conversational prompts (plus extra columns the reward function receives as keyword arguments)."""
    from datasets import Dataset

    return Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in prompts],
                              **{k: list(v) for k, v in columns.items()}})


def completion_text(completion: Any) -> str:
    """A TRL completion (a string, or a conversational list of messages) as plain text."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion)


def train(model_path: str, reward: Callable[..., list[float]], dataset, output_dir: str,
          config: RLConfig = RLConfig(), callbacks: Sequence[Any] | None = None, **extra: Any):
    """Run GRPO or RLOO against `reward(prompts, completions, **columns) -> list[float]`; returns the trainer.

    The log (trainer.state.log_history) has per-step 'kl' (to the initial policy, mean per
    token), 'reward' and 'train_runtime'. `callbacks` (transformers TrainerCallbacks) go to the
    trainer, e.g. an evaluation every k steps; `extra` goes to TRL's config.
    """
    import torch
    from transformers import AutoTokenizer

    if config.beta <= 0:
        raise ConfigError(f"RL beta must be > 0 so that KL is measured (got {config.beta})")
    if config.batch_size % config.num_generations:
        raise ConfigError(f"batch_size {config.batch_size} must be a multiple of num_generations "
                          f"{config.num_generations}")
    torch.set_num_threads(config.threads)
    tok = AutoTokenizer.from_pretrained(model_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    common = dict(output_dir=output_dir, beta=config.beta, num_generations=config.num_generations,
                  max_completion_length=config.max_completion_length,
                  per_device_train_batch_size=config.batch_size, max_steps=config.max_steps,
                  learning_rate=config.learning_rate, temperature=config.temperature, bf16=use_bf16(config.bf16),
                  report_to="none", save_strategy="no", logging_steps=1, seed=config.seed,
                  disable_tqdm=True, **{**device.trainer_kwargs(), **extra})
    if config.algorithm == "grpo":
        from trl import GRPOConfig as Cfg, GRPOTrainer as Trainer
    elif config.algorithm == "rloo":
        from trl import RLOOConfig as Cfg, RLOOTrainer as Trainer
    else:
        raise ConfigError(f"unknown RL algorithm {config.algorithm!r}; valid: grpo, rloo")
    trainer = Trainer(model=model_path, reward_funcs=reward, args=Cfg(**common), train_dataset=dataset,
                      processing_class=tok, callbacks=list(callbacks) if callbacks else None)
    trainer.train()
    return trainer


def step_log(trainer) -> list[dict[str, float]]:
    """The per-step entries of the training log (those with a KL)."""
    return [e for e in trainer.state.log_history if "kl" in e]
