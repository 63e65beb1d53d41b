"""Bradley-Terry reward models trained on pairwise comparisons, and ensembles of them.

The reward model of RLHF (Christiano et al. 2017, arXiv:1706.03741; Ouyang et al. 2022,
arXiv:2203.02155): r(x, y) trained so that sigmoid(r(x, y_w) - r(x, y_l)) is the probability
that y_w is preferred. Two kinds:

- `FrozenFeatureRM`: a linear head on frozen hidden states of the policy (one forward per
  completion, cached; the head trains in milliseconds with L-BFGS). The cheap proxy that makes
  a sweep affordable on a CPU.
- `train_trl_reward_model`: TRL's RewardTrainer with a sequence-classification head on the
  policy's architecture (the standard recipe; seconds per step on a CPU).

Ensembles (Coste et al. 2023, arXiv:2310.02743, "Reward Model Ensembles Help Mitigate
Overoptimization"): members trained on bootstrap resamples, scores standardised per member,
combined by the mean, the mean minus k standard deviations (uncertainty-weighted), or the
minimum (worst-case).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
from scipy.optimize import minimize

from alignlab.core import device
from alignlab.core.errors import ConfigError

AGGREGATES = ("mean", "mean-std", "min")


# -- features ---------------------------------------------------------------------------------

class _Stop(Exception):
    """Raised by a forward hook to end a forward pass once the wanted layer has run."""


def layer_states(model: Any, ids: Any, mask: Any, layer: int) -> Any:
    """hidden_states[layer] of a decoder-only model, without running the layers above it or the LM head.

    For 0 < layer < the number of layers, hidden_states[layer] is the output of decoder layer layer-1 (before
    the final norm), so a hook there captures it and stops the pass: at layer 20 of SmolLM2's 30 this skips a
    third of the body and the 49,152-wide LM head (about 45% of the FLOPs). transformers has no option to stop
    a forward early, hence the hook. Other layers (the last, negative indices) take the plain full forward.
    """
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None or not 0 < layer < len(layers):
        return model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[layer]
    captured = {}

    def hook(module, args, output):
        captured["h"] = output[0] if isinstance(output, tuple) else output
        raise _Stop

    handle = layers[layer - 1].register_forward_hook(hook)
    try:
        model(input_ids=ids, attention_mask=mask, use_cache=False)
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured["h"]


def hidden_features(model: Any, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]],
                    layer: int = -1, batch_size: int = 0) -> np.ndarray:
    """[M, 2 D] features per (prompt, completion): the mean of layer `layer`'s hidden states over the
    completion's tokens, and its state at the last token (where a reward model's head reads). batch_size 0: 32
    sequences on the CPU, more on a GPU (`core.device.auto_batch`)."""
    import torch

    where = device.model_device(model)
    batch_size = device.auto_batch(batch_size, 32, where)
    seqs = [list(p) + list(c) for p, c in zip(prompt_ids, completion_ids)]
    starts = [len(p) for p in prompt_ids]
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    feats: list[np.ndarray | None] = [None] * len(seqs)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = max(len(seqs[i]) for i in idx)
        ids = torch.zeros((len(idx), width), dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):  # right padding: positions line up with the text
            ids[row, :len(seqs[i])] = torch.tensor(seqs[i])
            mask[row, :len(seqs[i])] = 1
        with torch.inference_mode():
            hs = layer_states(model, ids.to(where), mask.to(where), layer)
        hs = hs.float().cpu()
        for row, i in enumerate(idx):
            end = len(seqs[i])
            comp = hs[row, min(starts[i], end - 1):end]
            feats[i] = torch.cat([comp.mean(0), hs[row, end - 1]]).numpy()
    return np.stack(feats).astype(np.float32)


# -- the frozen-feature Bradley-Terry head ---------------------------------------------------------

@dataclasses.dataclass
class FrozenFeatureRM:
    """r(y) = w . standardise(phi(y)), fitted by L2-regularised Bradley-Terry maximum likelihood."""

    w: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def score(self, feats: np.ndarray) -> np.ndarray:
        return ((np.asarray(feats, np.float64) - self.mean) / self.scale) @ self.w


def fit_bt_head(feats: np.ndarray, pairs: np.ndarray, labels: np.ndarray, l2: float = 1.0,
                sample_weight: np.ndarray | None = None) -> FrozenFeatureRM:
    """Fit a linear Bradley-Terry head. pairs [K, 2] index rows of feats; labels[k] = 1 if pairs[k, 0] won.

    Loss: sum_k -log sigmoid(s_k (r_a - r_b)) + l2/2 |w|^2 with s_k = +-1 (logistic regression on
    feature differences; convex, so L-BFGS finds the optimum).
    """
    feats = np.asarray(feats, np.float64)
    mean = feats.mean(0)
    scale = feats.std(0) + 1e-6
    z = (feats - mean) / scale
    diff = z[pairs[:, 0]] - z[pairs[:, 1]]
    sign = np.where(np.asarray(labels) > 0, 1.0, -1.0)
    x = diff * sign[:, None]
    sw = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, float)

    def loss(w):
        m = x @ w
        lp = np.logaddexp(0.0, -m)  # -log sigmoid(m)
        sig = 1.0 / (1.0 + np.exp(np.clip(m, -50, 50)))  # sigmoid(-m)
        grad = -(x * (sw * sig)[:, None]).sum(0) + l2 * w
        return float((sw * lp).sum() + 0.5 * l2 * w @ w), grad

    res = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return FrozenFeatureRM(res.x, mean, scale)


@dataclasses.dataclass
class Ensemble:
    """Several reward models; each member's scores standardised on a reference set, then combined."""

    members: list[FrozenFeatureRM]
    ref_mean: np.ndarray
    ref_std: np.ndarray
    aggregate: str = "mean"
    k: float = 1.0
    """Standard deviations subtracted by the 'mean-std' aggregate."""

    def member_scores(self, feats: np.ndarray) -> np.ndarray:
        s = np.stack([m.score(feats) for m in self.members])
        return (s - self.ref_mean[:, None]) / self.ref_std[:, None]

    def score(self, feats: np.ndarray) -> np.ndarray:
        s = self.member_scores(feats)
        if self.aggregate == "mean" or len(self.members) == 1:
            return s.mean(0)
        if self.aggregate == "mean-std":
            return s.mean(0) - self.k * s.std(0)
        if self.aggregate == "min":
            return s.min(0)
        raise ConfigError(f"unknown ensemble aggregate {self.aggregate!r}; valid: {', '.join(AGGREGATES)}")


def fit_ensemble(feats: np.ndarray, pairs: np.ndarray, labels: np.ndarray, size: int = 1,
                 aggregate: str = "mean", k: float = 1.0, l2: float = 1.0,
                 rng: np.random.Generator | None = None, reference: np.ndarray | None = None) -> Ensemble:
    """`size` heads; with size > 1 each is fitted on a bootstrap resample of the comparisons."""
    if aggregate not in AGGREGATES:
        raise ConfigError(f"unknown ensemble aggregate {aggregate!r}; valid: {', '.join(AGGREGATES)}")
    if size < 1:
        raise ConfigError(f"ensemble size must be >= 1 (got {size})")
    rng = rng or np.random.default_rng(0)
    members = []
    for _ in range(size):
        if size == 1:
            sw = None
        else:  # bootstrap as multiplicity weights: same optimum as resampling, one matrix
            sw = np.bincount(rng.integers(len(pairs), size=len(pairs)), minlength=len(pairs)).astype(float)
        members.append(fit_bt_head(feats, pairs, labels, l2=l2, sample_weight=sw))
    ref = feats if reference is None else reference
    s = np.stack([m.score(ref) for m in members])
    return Ensemble(members, s.mean(1), s.std(1) + 1e-9, aggregate, k)


def preference_accuracy(scores: np.ndarray, pairs: np.ndarray, labels: np.ndarray) -> float:
    """Share of comparisons where the model ranks the labelled winner higher (ties count half)."""
    d = scores[pairs[:, 0]] - scores[pairs[:, 1]]
    d = np.where(np.asarray(labels) > 0, d, -d)
    return float(np.mean((d > 0) + 0.5 * (d == 0)))


def gold_accuracy(scores: np.ndarray, gold: np.ndarray, pairs: np.ndarray) -> float:
    """Accuracy against gold preferences, on the pairs whose gold rewards differ."""
    g = gold[pairs[:, 0]] - gold[pairs[:, 1]]
    keep = g != 0
    if not keep.any():
        return float("nan")
    return preference_accuracy(scores, pairs[keep], (g[keep] > 0).astype(int))


# -- TRL RewardTrainer: a sequence-classification head on the policy's architecture -------------

def comparisons_dataset(prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str]):
    """A `datasets.Dataset` in TRL's conversational preference format (prompt / chosen / rejected)."""
    from datasets import Dataset

    return Dataset.from_dict({
        "prompt": [[{"role": "user", "content": p}] for p in prompts],
        "chosen": [[{"role": "assistant", "content": c}] for c in chosen],
        "rejected": [[{"role": "assistant", "content": r}] for r in rejected],
    })


def train_trl_reward_model(model_path: str, dataset, output_dir: str, max_steps: int = 10, batch_size: int = 4,
                           learning_rate: float = 1e-5, max_length: int = 128, bf16: bool = False,
                           threads: int = 1, seed: int = 0, gradient_checkpointing: bool | None = None,
                           attn_implementation: str | None = None, **config: Any):
    """Train TRL's RewardTrainer (Bradley-Terry loss) from a saved model folder; returns the trainer.

    `model_path` must be a plain (safetensors) folder, never the GGUF (TRL re-loads from the
    path). Seconds per step are in `trainer.state.log_history` (train_runtime / max_steps).
    `gradient_checkpointing` and `attn_implementation` default as DPO's (`lm.dpo.use_checkpointing`: only for
    models above 2 GB of weights; `lm.dpo.default_attention`: eager on the CPU), both measured faster per step
    for SmolLM2-135M (docs/benchmarks.md).
    """
    import torch
    from transformers import AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from alignlab.lm.dpo import model_init_kwargs, use_checkpointing

    torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(model_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    args = RewardConfig(output_dir=output_dir, max_steps=max_steps, per_device_train_batch_size=batch_size,
                        learning_rate=learning_rate, max_length=max_length, bf16=bf16,
                        activation_checkpointing=use_checkpointing(gradient_checkpointing, model_path),
                        report_to="none", save_strategy="no", logging_steps=1, seed=seed,
                        dataloader_num_workers=0, disable_tqdm=True,
                        **{**device.trainer_kwargs(), **model_init_kwargs(config, attn_implementation)})
    trainer = RewardTrainer(model=model_path, args=args, train_dataset=dataset, processing_class=tok)
    trainer.train()
    return trainer


def trl_scores(trainer, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 16) -> np.ndarray:
    """Scores of a trained sequence-classification reward model for (prompt, response) pairs."""
    import torch

    model, tok = trainer.model, trainer.processing_class
    model.eval()
    texts = [tok.apply_chat_template([{"role": "user", "content": p}, {"role": "assistant", "content": r}],
                                     tokenize=False) for p, r in zip(prompts, responses)]
    out = []
    side = tok.padding_side
    tok.padding_side = "right"
    try:
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                out.append(device.to_numpy(model(**enc.to(device.model_device(model))).logits[:, 0].float()))
    finally:
        tok.padding_side = side
    return np.concatenate(out)
