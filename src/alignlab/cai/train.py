"""Training Constitutional AI models (Bai et al. 2022, "Constitutional AI: Harmlessness from AI Feedback",
arXiv:2212.08073): SL-CAI (supervised fine-tuning on the revisions) and RL-CAI (preference training on AI
feedback), each with LoRA (Hu et al. 2021, arXiv:2106.09685) on TRL, cached on disk.

SL-CAI fine-tunes the policy on (prompt, final revision) with TRL's SFTTrainer (completion-only loss). RL-CAI
starts from the SL-CAI model, samples two responses per prompt, asks the feedback model which is better under a
sampled comparison principle (cai/feedback.py: soft labels from the log-probabilities of "(A)"/"(B)"), and trains
with DPO (Rafailov et al. 2023, arXiv:2305.18290; lm/dpo.py) instead of the paper's PPO against a preference model.
TRL's DPO takes hard labels, so each soft label becomes chosen/rejected by its larger side, and the soft labels'
uncertainty enters as the label-flip rate of robust DPO (Chowdhury et al. 2024, arXiv:2403.00409; TRL's
loss_type="robust", label_smoothing = the mean of min(p, 1 - p) over the kept pairs, capped at 0.4).

Every trained adapter is stored under `<ALIGNLAB_CACHE>/cai/<stage>-<constitution>-<key>`, the key a hash of the
base model's files, the constitution file, the prompt file, the settings and `FORMAT`; it is trained once (a
file lock makes concurrent workers wait for the first) and loaded afterwards. The folder keeps the training set
(`data.jsonl`: transcripts or preferences), the training log and the stats (`meta.json`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Literal

from alignlab.core.config import BaseConfig, stable_hash
from alignlab.core.errors import ConfigError, UserError

FORMAT = 3
"""Bump when the training procedure changes, so cached adapters are retrained."""
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


@dataclasses.dataclass(frozen=True)
class CAIConfig(BaseConfig):
    constitution: str = "default"
    """A bundled constitution (default, empty, bad) or a file: .toml (alignlab) or .json (llm-swarm's format)."""
    stage: Literal["sl", "rl"] = "sl"
    """sl: supervised fine-tuning on critique-revisions (SL-CAI); rl: then DPO on AI feedback (RL-CAI)."""
    prompts: int = 24
    """Training prompts from the red-team file's train split (spread over categories; harmless ones included)."""
    rounds: int = 1
    """Critique-revision rounds per prompt (a principle sampled for each)."""
    revision: Literal["critiqued", "direct"] = "direct"
    """critiqued: critique, then revision (the paper's main loop); direct: the revision request straight after the
    response (the paper's direct-revision variant, sec. 3.5). Direct is the default because a 135M critic asked
    for a revision after its own critique mostly repeats the critique (cai/sl.py)."""
    examples: int = 3
    """Few-shot critique/revision dialogues shown before each request (at most those the constitution has)."""
    max_new_tokens: int = 32
    """Longest answer, critique, revision or sampled response."""
    critic: str = ""
    """Model spec that writes critiques and revisions ('' = the policy itself, as in the paper)."""
    feedback: str = ""
    """Model spec that gives the AI feedback ('' = the policy before training)."""
    sft_steps: int = 12
    """SL-CAI optimizer steps (batch `batch_size`)."""
    sft_lr: float = 1e-3
    """SL-CAI learning rate (LoRA)."""
    dpo_steps: int = 12
    """RL-CAI DPO steps."""
    dpo_lr: float = 5e-6
    """RL-CAI DPO learning rate, as lm/dpo.py takes it: with LoRA it trains at 10x this (5e-5, format 1's rate).
    At dpo_lr=2e-4 (2e-3 with LoRA) the robust DPO loss, unbounded below at a flip rate of 0.4, ran to -2.7..-4.4 in
    12 steps on near-random labels and the RL models degenerated (docs/constitutional-ai.md)."""
    dpo_beta: float = 0.1
    """DPO's KL strength."""
    min_confidence: float = 0.0
    """Drop preference pairs whose |P(first better) - 0.5| * 2 is below this."""
    pair_temperature: float = 0.7
    """Sampling temperature of the two responses per RL prompt."""
    lora_rank: int = 8
    """LoRA rank (alpha = 2 x rank) on the attention projections."""
    batch_size: int = 4
    """Training batch size."""
    data: str = ""
    """A red-team prompt file in the shipped JSONL layout ('' = the shipped one)."""
    dtype: str = "auto"
    """Weights of the generating models (answers, revisions, sampled pairs, AI feedback): auto (bfloat16 where the
    device runs it natively, else float32), float32 or bfloat16. Training keeps float32 weights (bf16 autocast
    where native)."""
    seed: int = 0
    """Seed of prompt selection, principle sampling and training."""

    def __post_init__(self) -> None:
        if self.stage not in ("sl", "rl"):
            raise ConfigError(f"constitutional-ai: stage must be sl or rl (got {self.stage!r})")
        if self.revision not in ("critiqued", "direct"):
            raise ConfigError(f"constitutional-ai: revision must be critiqued or direct (got {self.revision!r})")
        for key in ("sft_lr", "dpo_lr", "dpo_beta", "pair_temperature"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"constitutional-ai: {key} must be a positive number (got {value!r})")
        for key in ("prompts", "rounds", "max_new_tokens", "sft_steps", "dpo_steps", "lora_rank", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"constitutional-ai: {key} must be >= 1 (got {getattr(self, key)})")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise ConfigError(f"constitutional-ai: dtype must be auto, float32 or bfloat16 (got {self.dtype!r})")
        if self.examples < 0 or not 0 <= self.min_confidence < 1:
            raise ConfigError("constitutional-ai: examples >= 0 and 0 <= min_confidence < 1 are required")
        from alignlab.cai.constitution import load

        load(self.constitution)  # a ConstitutionError names the file, line and field


def fingerprint(model_path: str) -> str:
    """A hash of a model folder's config and weight files (name, size, first and last MiB)."""
    root = Path(model_path)
    parts = []
    for f in sorted(root.glob("*.json")) + sorted(root.glob("*.safetensors")):
        with open(f, "rb") as fh:
            head = fh.read(1 << 20)
            fh.seek(max(0, f.stat().st_size - (1 << 20)))
            tail = fh.read()
        parts.append([f.name, f.stat().st_size, stable_hash(head.hex()), stable_hash(tail.hex())])
    return stable_hash(parts)


def cache_root() -> Path:
    from alignlab.lm.models import cache_dir

    return cache_dir() / "cai"


def key(base_path: str, config: CAIConfig, stage: str) -> str:
    from alignlab.cai import constitution, prompts

    c = constitution.load(config.constitution)
    settings = {k: v for k, v in config.to_dict().items() if k not in ("constitution", "data", "stage")}
    settings["dtype"] = resolved_dtype(config)
    if stage == "sl":  # the SL adapter does not depend on the RL settings
        settings = {k: v for k, v in settings.items()
                    if k not in ("feedback", "dpo_steps", "dpo_lr", "dpo_beta", "min_confidence", "pair_temperature")}
    return stable_hash({"format": FORMAT, "base": fingerprint(base_path), "constitution": c.digest,
                        "data": prompts.digest(config.data or None), "settings": settings, "stage": stage})


def resolved_dtype(config: CAIConfig) -> str:
    """The generating models' dtype, 'auto' resolved on the device in force."""
    from alignlab.lm.models import resolve_dtype

    return resolve_dtype(config.dtype)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def adapter_dir(base_path: str, config: CAIConfig, stage: str) -> Path:
    from alignlab.cai.constitution import load

    return cache_root() / f"{stage}-{load(config.constitution).name}-{key(base_path, config, stage)}"


def _chat(spec: str, fallback: Any) -> Any:
    if not spec:
        return fallback
    from alignlab.evals.backends import make_model

    return make_model(spec, cache=False)


def ensure(base_path: str, config: CAIConfig, base_model: Any = None, stage: str | None = None) -> list[Path]:
    """The adapter folders of `config` (SL, then RL for stage rl), training what is not cached yet.
    `base_model`: the policy as a chat model, if already loaded (else loaded from `base_path`)."""
    stage = stage or config.stage
    sl = adapter_dir(base_path, config, "sl")
    chain = [sl] if stage == "sl" else [sl, adapter_dir(base_path, config, "rl")]
    for i, target in enumerate(chain):
        with _locked(target):
            if (target / "meta.json").exists():
                continue
            if base_model is None:
                base_model = load_chat(base_path, [], "policy", dtype=resolved_dtype(config))
            tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
            try:
                if i == 0:
                    _train_sl(base_path, config, base_model, tmp)
                else:
                    _train_rl(base_path, config, base_model, chain[:1], tmp)
                if target.exists():
                    shutil.rmtree(target)
                tmp.replace(target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
                _release(base_model)
    return chain


def _release(model: Any) -> None:
    """Drop the KV caches a chat model kept from the long few-shot prompts (up to 1 GiB), and collect."""
    import gc

    store = getattr(model, "prefix_store", None)
    if store is not None:
        model.prefix_store = type(store)(store.max_bytes)
    gc.collect()


def meta(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "meta.json").read_text(encoding="utf-8"))


def rows(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / "data.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]


def _write(folder: Path, data: list[dict[str, Any]], info: dict[str, Any]) -> None:
    with open(folder / "data.jsonl", "w", encoding="utf-8") as fh:
        for r in data:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    (folder / "meta.json").write_text(json.dumps(info, indent=1, sort_keys=True), encoding="utf-8")


def _train_sl(base_path: str, config: CAIConfig, policy: Any, out: Path) -> None:
    from alignlab.cai import constitution, prompts, sl

    started = time.time()
    c = constitution.load(config.constitution)
    items = prompts.select(prompts.load(config.data or None), "train", config.prompts, config.seed)
    critic = _chat(config.critic, policy)
    initial = _initial(base_path, config, policy, items)
    transcripts = sl.critique_revise(policy, critic, c, items, config.rounds, config.seed, config.max_new_tokens,
                                     examples=config.examples, initial=initial, mode=config.revision)
    generated = time.time() - started
    log = sft(base_path, [t.prompt for t in transcripts], [t.final or t.initial for t in transcripts], out, config)
    _write(out, [t.to_dict() for t in transcripts],
           {"stage": "sl", "constitution": c.summary(), "config": config.to_dict(), "base": base_path,
            "quality": sl.critique_quality(transcripts, c), "log": log, "generate_s": generated,
            "train_s": time.time() - started - generated})


def _initial(base_path: str, config: CAIConfig, policy: Any, items: list[Any]) -> list[str]:
    """The policy's greedy answers to the training prompts: they do not depend on the constitution, so they are
    generated once per base model, prompt set and settings and shared by every constitution (a file in the cache)."""
    k = stable_hash({"format": FORMAT, "base": fingerprint(base_path), "prompts": [p.prompt for p in items],
                     "tokens": config.max_new_tokens, "seed": config.seed, "dtype": resolved_dtype(config)})
    path = cache_root() / "initial" / f"{k}.json"
    with _locked(path):
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        answers = policy.chat([[{"role": "user", "content": p.prompt}] for p in items],
                              max_new_tokens=config.max_new_tokens, temperature=0.0, seed=config.seed)
        path.write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    return answers


def _train_rl(base_path: str, config: CAIConfig, base_model: Any, sl_chain: list[Path], out: Path) -> None:
    from alignlab.cai import constitution, feedback, prompts
    from alignlab.lm import dpo
    from alignlab.rewards.reward_models import comparisons_dataset

    import datasets

    datasets.disable_progress_bars()
    started = time.time()
    c = constitution.load(config.constitution)
    items = prompts.select(prompts.load(config.data or None), "train", config.prompts, config.seed)
    merged = out / "sl-merged"
    sl_model = load_chat(base_path, sl_chain, "sl", save_to=merged, dtype=resolved_dtype(config))
    convs = [[{"role": "user", "content": p.prompt}] for p in items]
    both = sl_model.chat(convs + convs, config.max_new_tokens, config.pair_temperature, seed=config.seed + 11)
    first, second = both[:len(convs)], both[len(convs):]  # two independent samples per prompt, one call
    del sl_model
    judge = _chat(config.feedback, base_model)
    prefs, stats = feedback.preferences(judge, c, [p.prompt for p in items], first, second, config.seed)
    pairs, flip = feedback.hard_labels(prefs, config.min_confidence)
    generated = time.time() - started
    log: list[dict[str, float]] = []
    if pairs:
        eps = min(0.4, flip)
        settings = dpo.DPOSettings(beta=config.dpo_beta, lora=True, lora_rank=config.lora_rank,
                                   learning_rate=config.dpo_lr, batch_size=min(config.batch_size, len(pairs)),
                                   max_steps=config.dpo_steps, max_length=64 + 3 * config.max_new_tokens,
                                   bf16=None, seed=config.seed)
        trainer = dpo.train(str(merged), comparisons_dataset(*zip(*pairs)), str(out / "trl"), settings,
                            loss_type=["robust"], label_smoothing=eps)
        log = _losses(trainer)
        trainer.model.save_pretrained(str(out))
    else:  # no usable pair: an identity adapter, recorded as such
        eps = float("nan")
    shutil.rmtree(merged, ignore_errors=True)
    shutil.rmtree(out / "trl", ignore_errors=True)
    _write(out, [dataclasses.asdict(p) for p in prefs],
           {"stage": "rl", "constitution": c.summary(), "config": config.to_dict(), "base": base_path,
            "feedback": {**stats, "kept_pairs": float(len(pairs)), "label_smoothing": eps}, "log": log,
            "trained": bool(pairs), "generate_s": generated, "train_s": time.time() - started - generated})


def _losses(trainer: Any) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in e.items() if isinstance(v, (int, float)) and math.isfinite(v)}
            for e in trainer.state.log_history if "loss" in e]


def sft(base_path: str, prompts: list[str], completions: list[str], out: Path, config: CAIConfig
        ) -> list[dict[str, float]]:
    """LoRA SFT of `base_path` on (prompt, completion) pairs with TRL's SFTTrainer (loss on the completion only);
    the adapter is saved in `out`. Returns the loss log."""
    from alignlab.lm.models import offline

    offline()
    import datasets
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from alignlab.lm.dpo import quiet_trl, use_checkpointing
    from alignlab.lm.models import use_bf16

    torch.set_num_threads(1)
    datasets.disable_progress_bars()
    tok = AutoTokenizer.from_pretrained(base_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    data = Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in prompts],
                              "completion": [[{"role": "assistant", "content": c}] for c in completions]})
    # bf16 autocast where the CPU runs it natively; activation checkpointing (TRL's SFT default) only for large
    # models, as for DPO (lm/dpo.use_checkpointing): a 135M model's activations fit, and recomputing them is pure cost.
    args = SFTConfig(output_dir=str(out / "trl"), max_steps=config.sft_steps, learning_rate=config.sft_lr,
                     per_device_train_batch_size=min(config.batch_size, len(prompts)),
                     max_length=64 + 2 * config.max_new_tokens, use_cpu=True, report_to="none",
                     save_strategy="no", logging_steps=1, disable_tqdm=True, seed=config.seed,
                     bf16=use_bf16(None), activation_checkpointing=use_checkpointing(None, base_path),
                     log_level="error")
    peft_config = LoraConfig(r=config.lora_rank, lora_alpha=2 * config.lora_rank, lora_dropout=0.0,
                             target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    with quiet_trl():
        trainer = SFTTrainer(model=base_path, args=args, train_dataset=data, processing_class=tok,
                             peft_config=peft_config)
        trainer.remove_callback(PrinterCallback)  # each step's loss goes to the log kept in meta.json instead
        trainer.train()
        trainer.model.save_pretrained(str(out))
    shutil.rmtree(out / "trl", ignore_errors=True)
    return _losses(trainer)


def load_chat(base_path: str, chain: list[Path], label: str, save_to: Path | None = None,
              batch_size: int = 16, dtype: Any = None) -> Any:
    """The base model with each adapter of `chain` merged in turn, as a LocalChatModel named `label`;
    `save_to`: also save the merged weights there (a plain folder TRL can train from, in float32); `dtype`: the
    chat model's weights (a torch dtype or its name; None: float32), cast after merging and saving."""
    from alignlab.lm.chat import LocalChatModel, quiet_transformers
    from alignlab.lm.models import load

    quiet_transformers()
    model, tok = load(base_path)
    for folder in chain:
        if not (folder / "adapter_config.json").exists():
            continue  # an RL stage that had no usable pair left the model unchanged
        from peft import PeftModel

        from alignlab.lm.dpo import quiet_trl

        with quiet_trl():
            model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    model.eval()
    if save_to is not None:
        save_to.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(save_to), safe_serialization=True)
        tok.save_pretrained(str(save_to))
    if dtype is not None:
        import torch

        model = model.to(getattr(torch, dtype) if isinstance(dtype, str) else dtype)
    return LocalChatModel(model, tok, name=label, batch_size=batch_size)


def base_path_of(model: Any) -> str:
    """The local folder of a chat model's weights (a LocalChatModel of the embedded model, a folder or a cached id);
    UserError for anything that cannot be fine-tuned here (an endpoint, a wrapped model)."""
    inner = getattr(model, "model", None)
    path = getattr(inner, "name_or_path", "") if inner is not None else ""
    if not path or not (Path(path) / "config.json").exists():
        name = getattr(model, "name", type(model).__name__)
        raise UserError(f"constitutional-ai fine-tunes weights, so it needs a local model (embedded, or a folder "
                        f"saved with save_pretrained) as the base, innermost in a model spec; got {name!r}")
    return os.fspath(path)
