"""Refusal training on red-team findings: the attacks that got a harmful answer out of the model become preference
pairs (chosen: a refusal, rejected: the model's complying reply), trained with DPO on LoRA adapters (Perez et al.
2022, "Red Teaming Language Models with Language Models", arXiv:2202.03286, sec. 7; Rafailov et al. 2023, DPO,
arXiv:2305.18290; Hu et al. 2021, LoRA, arXiv:2106.09685)."""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError, UserError
from alignlab.core.registry import register
from alignlab.core.technique import Technique
from alignlab.redteam.attacks import FAMILIES, build_attacks, run_attacks
from alignlab.redteam.behaviours import benign, behaviours

REFUSALS = ("I'm sorry, but I can't help with that.",
            "I can't help with that request. It could hurt someone.",
            "I'm sorry, I won't help with this, because it could cause harm.",
            "I cannot assist with that. Is there something else I can help you with?")
"""The chosen replies of the harmful pairs (and the rejected replies of the benign ones)."""


@dataclasses.dataclass(frozen=True)
class RefusalTrainingConfig(BaseConfig):
    families: tuple[str, ...] = tuple(f for f in FAMILIES if f != "many-shot")
    """Attack families whose successful attacks become training pairs (redteam/attacks.py FAMILIES). Many-shot is
    left out by default: its 150-230-token prompts would triple a DPO step's cost, and it stays a family the defence
    never saw."""
    variants: tuple[int, ...] = (0, 1)
    """Template variants (0-2) of each family used for training (more pairs per behaviour); the others stay unseen
    for evaluation."""
    behaviours: int = 8
    """Training behaviours attacked for the pairs (the first N of the training split; 0: all 24). Small by default,
    with `steps`, so that the contract test of every chat-model experiment can afford to train it once."""
    steps: int = 16
    """DPO optimizer steps (LoRA). At 8 steps and a LoRA learning rate of 2e-4 the loss stayed at 0.69-0.72 (nothing
    learned); 16 steps at 2e-3 grow the reward margin but are still too few to lower attack success (docs/redteam.md:
    a quarter of one pass over the pairs)."""
    batch_size: int = 4
    """Pairs per step."""
    learning_rate: float = 2e-4
    """DPO learning rate before the LoRA multiplier (alignlab.lm.dpo applies 10x for LoRA: 2e-3 on the adapters)."""
    beta: float = 0.1
    """DPO's implicit KL strength."""
    lora_rank: int = 8
    """LoRA rank on the attention projections."""
    benign: bool = True
    """Add pairs that prefer answering ordinary requests wrapped in the same attack templates over refusing them
    (so the model learns to refuse by content, not by framing)."""
    max_new_tokens: int = 16
    """Length of the target's replies collected as rejected answers (a refusal shows in its first words)."""
    max_length: int = 160
    """Tokens per training sequence, prompt and reply (TRL keeps the start of a longer one and drops a pair whose
    reply is cut off entirely; the single-turn attack prompts are under 100 tokens, many-shot ones 150-230).
    A DPO step's cost grows with it: about 8 CPU s per step at ~110 tokens on this CPU (docs/benchmarks.md)."""

    def __post_init__(self) -> None:
        bad = [f for f in self.families if f not in FAMILIES]
        if bad or not self.families:
            raise ConfigError(f"refusal-training: unknown families {bad}; valid: {', '.join(FAMILIES)}")
        if not self.variants or any(v not in (0, 1, 2) for v in self.variants):
            raise ConfigError(f"refusal-training: variants must be among 0, 1, 2 (got {self.variants})")
        if self.behaviours < 0:
            raise ConfigError(f"refusal-training: behaviours must be >= 0 (got {self.behaviours})")
        for name in ("steps", "batch_size", "lora_rank", "max_new_tokens", "max_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"refusal-training: {name} must be >= 1 (got {getattr(self, name)})")
        if self.learning_rate <= 0 or self.beta <= 0:
            raise ConfigError("refusal-training: learning_rate and beta must be > 0")


def preference_pairs(model: Any, config: RefusalTrainingConfig, seed: int = 0) -> tuple[list[dict], dict[str, int]]:
    """TRL conversational preference rows from attacks on the training behaviours, and their counts."""
    train = behaviours("train")
    attacks = build_attacks(train[:config.behaviours or len(train)], config.families, config.variants, seed=seed)
    outcomes = run_attacks(model, attacks, config.max_new_tokens)
    rows = []
    for i, o in enumerate(o for o in outcomes if o.success):
        rows.append({"prompt": o.attack.conversation,
                     "chosen": [{"role": "assistant", "content": REFUSALS[i % len(REFUSALS)]}],
                     "rejected": [{"role": "assistant", "content": o.reply}]})
    harmful = len(rows)
    if config.benign and harmful:
        wrapped = build_attacks(benign(), [f for f in config.families if f != "obfuscation"], config.variants,
                                seed=seed)
        wrapped = [wrapped[i] for i in range(0, len(wrapped), max(1, len(wrapped) // harmful))][:harmful]
        for i, o in enumerate(o for o in run_attacks(model, wrapped, config.max_new_tokens) if o.success):
            rows.append({"prompt": o.attack.conversation, "chosen": [{"role": "assistant", "content": o.reply}],
                         "rejected": [{"role": "assistant", "content": REFUSALS[i % len(REFUSALS)]}]})
    return rows, {"attacks": len(attacks), "successful": harmful, "benign_pairs": len(rows) - harmful}


def learning_summary(log: list[dict[str, float]], k: int = 3) -> dict[str, float]:
    """Whether DPO learned: the loss, reward margin and reward accuracy averaged over the first and the last `k`
    logged steps (a loss still at log 2 = 0.69 and a margin near 0 mean it learned nothing)."""
    steps = [e for e in log if "loss" in e and "rewards/margins" in e]
    if not steps:
        return {}
    k = max(1, min(k, len(steps) // 2 or 1))
    out = {}
    for name, key in (("loss", "loss"), ("margin", "rewards/margins"), ("accuracy", "rewards/accuracies")):
        vals = [float(e.get(key, float("nan"))) for e in steps]
        out[f"{name}_first"] = sum(vals[:k]) / k
        out[f"{name}_last"] = sum(vals[-k:]) / k
    out["logged_steps"] = len(steps)
    return out


def model_path(chat_model: Any) -> str:
    """The saved folder of a local chat model's weights (DPO re-loads from it)."""
    if hasattr(chat_model, "base"):
        raise ConfigError("refusal-training trains a model's weights: put it first in a model spec "
                          "(embedded#refusal-training#system=..., not after another chat-model technique)")
    hf = getattr(chat_model, "model", None)
    path = getattr(getattr(hf, "config", None), "_name_or_path", "")
    if not path or not (Path(path) / "config.json").exists():
        raise UserError(f"refusal-training needs a local model saved in a folder; {getattr(chat_model, 'name', '?')} "
                        "is not one (an endpoint cannot be fine-tuned from here)")
    return path


@register("technique", "refusal-training-v0")
class RefusalTraining(Technique):
    slot = "chat-model"
    title = "Refusal training on red-team findings"
    summary = ("Attacks in six families (role-play, authority, hypothetical, translation, obfuscation, many-shot) are "
               "run against the model on the training behaviours; every attack it answered becomes a DPO pair that "
               "prefers a refusal to its reply, beside pairs that prefer answering ordinary requests in the same "
               "wrappers. LoRA adapters are trained once per model and setting and cached (the run's artifacts, and "
               "the alignlab cache), so evaluations reuse them.")
    source = ("Perez et al. 2022, arXiv:2202.03286; Rafailov et al. 2023, arXiv:2305.18290; Hu et al. 2021, "
              "arXiv:2106.09685")
    Config = RefusalTrainingConfig
    matrix_specs = ("behaviours=0", "behaviours=0,steps=32")
    smoke_args = "behaviours=2, steps=1, batch_size=2, max_new_tokens=8, max_length=128"

    def key(self, path: str) -> str:
        """The adapter's cache key: the base model's folder and this setting (not the inference dtype: the adapter
        is trained in fp32 and merged into whatever dtype the model runs in)."""
        blob = json.dumps({"model": str(Path(path).resolve()), "config": dataclasses.asdict(self.config),
                           "version": 1}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def adapter(self, model: Any, artifacts: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
        """The trained adapter's folder for this model (trained now if no cache has it) and its training record."""
        from alignlab.lm.models import cache_dir

        path = model_path(model)
        name = f"refusal-training-{self.key(path)}"
        home = cache_dir() / "adapters" / name
        places = ([Path(artifacts) / "adapters" / name] if artifacts else []) + [home]
        home.parent.mkdir(parents=True, exist_ok=True)
        with open(home.parent / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one trainer per adapter; the others wait and reuse it
            found = next((p for p in places if (p / "alignlab-training.json").exists()), None)
            if found is None:
                self._train(model, path, home)
                found = home
            record = json.loads((found / "alignlab-training.json").read_text())
            for p in places:
                if p != found and not (p / "alignlab-training.json").exists():
                    shutil.copytree(found, p, dirs_exist_ok=True)
        return found, record

    def _train(self, model: Any, path: str, out: Path) -> None:
        import tempfile

        from datasets import Dataset
        from datasets.utils.logging import disable_progress_bar

        from alignlab.lm import dpo

        disable_progress_bar()  # the datasets map bars would garble the CLI's output

        started = time.perf_counter()
        rows, counts = preference_pairs(model, self.config)
        tmp = Path(tempfile.mkdtemp(prefix="refusal-training-", dir=out.parent))
        record: dict[str, Any] = {**counts, "pairs": len(rows), "spec": self.spec, "model": path}
        if rows:
            c = self.config
            settings = dpo.DPOSettings(beta=c.beta, lora=True, lora_rank=c.lora_rank, learning_rate=c.learning_rate,
                                       batch_size=min(c.batch_size, len(rows)), max_steps=c.steps,
                                       max_length=c.max_length, bf16=False)
            trainer = dpo.train(path, Dataset.from_list(rows), str(tmp / "trainer"), settings)
            trainer.model.save_pretrained(tmp)
            record["log"] = [{k: v for k, v in e.items() if isinstance(v, (int, float))}
                             for e in trainer.state.log_history]
            record.update(learning_summary(record["log"]))
            shutil.rmtree(tmp / "trainer", ignore_errors=True)
        record["train_seconds"] = time.perf_counter() - started
        (tmp / "alignlab-training.json").write_text(json.dumps(record, indent=1))
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)

    def apply(self, model: Any, label: str | None = None, artifacts: str | Path | None = None,
              **context: Any) -> Any:
        """`model` with the adapter merged into a copy of its weights (trained on first use, then cached); with no
        successful attack to learn from, the model unchanged but renamed. `artifacts`: a run folder to keep a copy
        of the adapter in."""
        from alignlab.lm.chat import LocalChatModel

        folder, record = self.adapter(model, artifacts)
        name = f"{getattr(model, 'name', 'model')}#{label or self.spec}"
        if not record.get("pairs"):
            weights = model.model
        else:
            from peft import PeftModel
            from transformers import AutoModelForCausalLM

            from alignlab.lm.dpo import quiet_trl

            base = AutoModelForCausalLM.from_pretrained(record["model"], dtype=next(model.model.parameters()).dtype)
            with quiet_trl():
                weights = PeftModel.from_pretrained(base, str(folder)).merge_and_unload()
            weights = weights.to(next(model.model.parameters()).device).eval()  # where the base model runs
        out = LocalChatModel(weights, model.tokenizer, name=name, batch_size=getattr(model, "batch_size", 16))
        out.training = record
        return out
