"""Sparse autoencoders on the residual stream (Bricken et al. 2023, "Towards Monosemanticity", transformer-circuits.pub;
Cunningham et al. 2023, "Sparse Autoencoders Find Highly Interpretable Features in Language Models",
arXiv:2309.08600).

The corpus is text the project ships or generates (every string field of the evals' data files and the questions of
`lm/tasks.py`; nothing is downloaded), split into training and held-out texts by a fixed hash. Activations are read at
one hook point (`resid_post.L`, interp/hooks.py) at every token but the first (the attention-sink position, whose
norm is tens of times the others'), scaled by one constant so that their mean norm is sqrt(d_model) (SAELens'
`normalize_activations="expected_average_only_in"`).

The autoencoder is the standard ReLU SAE with the loss SAELens' `StandardTrainingSAE` uses: f = ReLU(W_enc (x - b_dec)
+ b_enc), x_hat = W_dec f + b_dec, loss = sum over dims of (x_hat - x)^2 + l1 * sum_i f_i ||W_dec,i|| (Anthropic's
April 2024 update of the L1 penalty), the encoder initialised as the decoder's transpose, the L1 coefficient warmed
up linearly. Our own trainer because SAELens trains from a transformer-lens model or its own activation store and
brings ~40 packages (wandb, transformer-lens, plotly, ...); it is benchmarked against SAELens' training SAE fed the
same activation tensors in benchmarks/bench_sae.py.

Reported (on held-out texts): explained variance, L0 (mean active features per token), dead features (never active on
any training or held-out token), and the cross-entropy loss recovered when the reconstruction is spliced into the
forward pass, (CE_zero - CE_sae) / (CE_zero - CE_clean), where CE_zero zero-ablates the same positions.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import zlib
from pathlib import Path
from typing import Any, Sequence

from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError

TEXT_KEYS = ("question", "reply", "prompt", "text", "content", "statement", "answer_text", "context")


@dataclasses.dataclass(frozen=True)
class SAESettings(BaseConfig):
    layer: int = 9
    """Decoder layer whose output (`resid_post.LAYER`) the SAE reconstructs."""
    expansion: int = 4
    """Features per residual dimension (d_sae = expansion x d_model)."""
    l1: float = 5.0
    """L1 coefficient (on normalized activations, SAELens' scale)."""
    lr: float = 1e-3
    """Adam learning rate."""
    steps: int = 600
    """Optimizer steps."""
    batch_tokens: int = 512
    """Tokens per step."""
    l1_warmup: float = 0.1
    """Share of the steps over which the L1 coefficient rises linearly from 0."""
    max_tokens: int = 48
    """Longest text read (tokens)."""
    seed: int = 0
    """Seed of initialisation and batch order."""

    def __post_init__(self) -> None:
        for k in ("expansion", "steps", "batch_tokens", "max_tokens"):
            if getattr(self, k) < 1:
                raise ConfigError(f"sae: {k} must be >= 1 (got {getattr(self, k)})")
        if self.layer < 0 or self.l1 < 0 or not 0 < self.lr < 1 or not 0 <= self.l1_warmup <= 1:
            raise ConfigError("sae: layer >= 0, l1 >= 0, 0 < lr < 1 and 0 <= l1_warmup <= 1 are required")


def corpus(limit: int = 0) -> dict[str, list[str]]:
    """{'train': texts, 'test': texts}: the distinct strings of the evals' data files (keys in TEXT_KEYS) and the
    `lm/tasks.py` questions, split 80/20 by a hash of the text; `limit` > 0 keeps that many of each split (in hash
    order, so a smaller corpus is a prefix of a larger one)."""
    from alignlab.evals import datasets as _  # noqa: F401  (the package's data folder)
    from alignlab.lm import tasks

    root = Path(_.__file__).parent / "data"
    seen: set[str] = set()
    for f in sorted(root.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            for k in TEXT_KEYS:
                v = row.get(k)
                if isinstance(v, str) and len(v) >= 12:
                    seen.add(v.strip())
    seen.update(it.prompt or it.question for it in tasks.make_items(n_arithmetic=300))
    texts = sorted(seen, key=lambda t: zlib.crc32(t.encode()))
    out: dict[str, list[str]] = {"train": [], "test": []}
    for t in texts:
        out["test" if zlib.crc32(("split" + t).encode()) % 5 == 0 else "train"].append(t)
    if limit:
        out = {k: v[:limit] for k, v in out.items()}
    return out


def encode(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    return [tokenizer(t, add_special_tokens=False)["input_ids"][:max_tokens] for t in texts]


def _batches(ids: list[list[int]], pad: int, size: int = 16) -> Any:
    import torch

    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        width = max(len(e) for e in chunk)
        x = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, e in enumerate(chunk):
            x[r, :len(e)] = torch.tensor(e, dtype=torch.long)
            mask[r, :len(e)] = 1
        yield start, x, mask


def activations(model: Any, tokenizer: Any, ids: list[list[int]], layer: int) -> tuple[Any, Any]:
    """(acts [tokens, d_model] float32, where [tokens, 2] = (text index, position)) at `resid_post.layer`, every
    position but the first of each text."""
    import torch

    from alignlab.interp.hooks import capture

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    acts, where = [], []
    for start, x, mask in _batches(ids, pad):
        with torch.inference_mode(), capture(model, [f"resid_post.{layer}"]) as got:
            model(input_ids=x.to(model.device), attention_mask=mask.to(model.device), use_cache=False, logits_to_keep=1)
        a = got[f"resid_post.{layer}"][0].float().cpu()  # SAEs train on the CPU's copy
        keep = mask.bool().clone()
        keep[:, 0] = False
        rows, cols = keep.nonzero(as_tuple=True)
        acts.append(a[rows, cols])
        where.append(torch.stack([rows + start, cols], dim=1))
    return torch.cat(acts), torch.cat(where)


class SAE:
    """A ReLU sparse autoencoder (parameters W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in], b_dec), with the
    activation scale it was trained at."""

    def __init__(self, d_in: int, d_sae: int, seed: int = 0, scale: float = 1.0):
        import torch

        g = torch.Generator().manual_seed(seed)
        w = torch.randn(d_sae, d_in, generator=g)
        w = w / w.norm(dim=1, keepdim=True) * 0.1
        self.W_dec = w.clone().requires_grad_(True)
        self.W_enc = w.T.clone().contiguous().requires_grad_(True)
        self.b_enc = torch.zeros(d_sae, requires_grad=True)
        self.b_dec = torch.zeros(d_in, requires_grad=True)
        self.scale = scale

    def parameters(self) -> list[Any]:
        return [self.W_enc, self.b_enc, self.W_dec, self.b_dec]

    def encode(self, x: Any) -> Any:
        """Feature activations of normalized inputs."""
        return ((x - self.b_dec) @ self.W_enc + self.b_enc).relu()

    def decode(self, f: Any) -> Any:
        return f @ self.W_dec + self.b_dec

    def reconstruct(self, raw: Any) -> Any:
        """Reconstruction of raw (unnormalized) activations, in raw units."""
        import torch

        with torch.no_grad():
            x = raw.float().to(self.W_enc.device) * self.scale
            return (self.decode(self.encode(x)) / self.scale).to(raw.device, raw.dtype)

    def loss(self, x: Any, l1: float) -> tuple[Any, Any, Any]:
        f = self.encode(x)
        mse = (self.decode(f) - x).pow(2).sum(dim=-1).mean()
        sparsity = (f * self.W_dec.norm(dim=1)).sum(dim=-1).mean()
        return mse + l1 * sparsity, mse, f

    def state(self) -> dict[str, Any]:
        return {"W_enc": self.W_enc.detach(), "b_enc": self.b_enc.detach(), "W_dec": self.W_dec.detach(),
                "b_dec": self.b_dec.detach(), "scale": self.scale}


def scale_for(acts: Any) -> float:
    """The constant that makes the mean activation norm sqrt(d_model)."""
    return float(math.sqrt(acts.shape[1]) / acts.norm(dim=1).mean())


def train(acts: Any, settings: SAESettings) -> tuple[SAE, dict[str, Any]]:
    """Train an SAE on raw activations [tokens, d_model]; returns it and the log (per-step seconds, losses)."""
    import torch

    torch.manual_seed(settings.seed)
    scale = scale_for(acts)
    x_all = acts.float() * scale
    sae = SAE(acts.shape[1], settings.expansion * acts.shape[1], settings.seed, scale)
    opt = torch.optim.Adam(sae.parameters(), lr=settings.lr, betas=(0.9, 0.999))
    g = torch.Generator().manual_seed(settings.seed)
    warm = max(1, int(settings.l1_warmup * settings.steps))
    log: list[dict[str, float]] = []
    started = time.perf_counter()
    for step in range(settings.steps):
        idx = torch.randint(0, len(x_all), (settings.batch_tokens,), generator=g)
        l1 = settings.l1 * min(1.0, (step + 1) / warm)
        loss, mse, f = sae.loss(x_all[idx], l1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % max(1, settings.steps // 10) == 0 or step == settings.steps - 1:
            log.append({"step": step, "loss": loss.item(), "mse": mse.item(),
                        "l0": (f > 0).float().sum(1).mean().item()})
    return sae, {"log": log, "train_s": time.perf_counter() - started,
                 "step_ms": 1000 * (time.perf_counter() - started) / settings.steps}


def feature_acts(sae: SAE, acts: Any, chunk: int = 4096) -> Any:
    import torch

    with torch.no_grad():
        return torch.cat([sae.encode(acts[i:i + chunk].float() * sae.scale) for i in range(0, len(acts), chunk)])


def recon_metrics(sae: SAE, acts: Any, train_acts: Any | None = None) -> dict[str, float]:
    """Explained variance, L0 and dead-feature share of `acts` (dead: never active on `acts` nor `train_acts`)."""
    import torch

    with torch.no_grad():
        x = acts.float() * sae.scale
        f = feature_acts(sae, acts)
        err = sae.decode(f) - x
        ev = 1 - float(err.pow(2).sum() / (x - x.mean(0)).pow(2).sum())
        fired = (f > 0).any(0)
        if train_acts is not None:
            fired = fired | (feature_acts(sae, train_acts) > 0).any(0)
        return {"explained_variance": ev, "l0": float((f > 0).float().sum(1).mean()),
                "dead_share": float(1 - fired.float().mean()), "d_sae": float(f.shape[1])}


def ce_losses(model: Any, tokenizer: Any, ids: list[list[int]], layer: int, sae: SAE) -> dict[str, float]:
    """Mean next-token cross-entropy on the texts: clean, with `resid_post.layer` replaced by the SAE's
    reconstruction (every position but the first), and zero-ablated at the same positions; and the share of the
    loss recovered."""
    import torch

    from alignlab.interp.hooks import hooks

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def splice(mode: str) -> Any:
        def edit(t: Any) -> Any:
            if mode == "clean":
                return None
            out = t.clone()
            out[:, 1:] = 0 if mode == "zero" else sae.reconstruct(t[:, 1:])
            return out
        return edit

    totals = {"clean": 0.0, "sae": 0.0, "zero": 0.0}
    count = 0
    for _, x, mask in _batches(ids, pad):
        x, mask = x.to(model.device), mask.to(model.device)
        target = x[:, 1:]
        valid = mask[:, 1:].bool()
        for mode in totals:
            with torch.inference_mode(), hooks(model, {f"resid_post.{layer}": splice(mode)}):
                logits = model(input_ids=x, attention_mask=mask, use_cache=False).logits[:, :-1].float()
            ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
            totals[mode] += float(ce[valid].sum())
        count += int(valid.sum())
    out = {f"ce_{k}": v / max(1, count) for k, v in totals.items()}
    denom = out["ce_zero"] - out["ce_clean"]
    out["ce_recovered"] = (out["ce_zero"] - out["ce_sae"]) / denom if denom > 0 else float("nan")
    return out
