"""Greedy Coordinate Gradient (GCG) adversarial suffixes against a chat model's refusals (Zou et al. 2023,
"Universal and Transferable Adversarial Attacks on Aligned Language Models", arXiv:2307.15043).

A suffix of `suffix_tokens` tokens is appended to each request; the loss is the cross-entropy of an affirmative
target ("Sure, here is how to ...") as the start of the assistant's reply, averaged over the requests (one
multi-prompt suffix, Zou et al.'s universal attack without the progressive schedule). Each step: the gradient of
the loss with respect to the suffix's one-hot token matrix, the `topk` most negative entries per position as the
candidate swaps, `search_width` candidates of one random swap each, the candidates that do not survive a decode /
encode round trip dropped, every candidate's loss computed exactly in batches, and the best one taken (as the
reference code and nanoGCG do, even when it is worse than the current suffix; the best suffix seen is kept).

`candidates="random"` is the random-search baseline with the same budget: the same loop, the same number of
candidate losses, but each swap is a uniformly random allowed token at a random position (no gradient).

Written here rather than taken from nanoGCG (the reference library; benchmarks/bench_gcg.py runs it side by side)
because nanoGCG 0.3.0 pins transformers 4.47 and its prefix cache indexes the cache as a tuple, which fails on the
transformers 5 cache object; it also computes logits for every position. Here the request's prefix is run once
and its key/value cache reused by every candidate, and only the target positions go through the LM head.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence

from alignlab.core.errors import ConfigError

PLACEHOLDER = "<<alignlab-suffix>>"


@dataclasses.dataclass(frozen=True)
class GCGSettings:
    steps: int = 50
    """Optimization steps (each one gradient and `search_width` candidate losses per request)."""
    suffix_tokens: int = 12
    """Length of the adversarial suffix in tokens (initialised to ' x' repeated, as nanoGCG does)."""
    search_width: int = 64
    """Candidate suffixes evaluated per step."""
    topk: int = 64
    """Swaps considered per position: the tokens with the most negative gradient."""
    batch_size: int = 64
    """Candidates per forward pass."""
    candidates: str = "gradient"
    """'gradient' (GCG) or 'random' (random search with the same number of candidate losses)."""
    early_stop: bool = True
    """Stop once the target is the greedy continuation of every request."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.candidates not in ("gradient", "random"):
            raise ConfigError(f"gcg: candidates must be 'gradient' or 'random' (got {self.candidates!r})")
        for name in ("steps", "suffix_tokens", "search_width", "topk", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"gcg: {name} must be >= 1 (got {getattr(self, name)})")


@dataclasses.dataclass
class GCGResult:
    suffix: str
    """The best suffix as text (it starts with a space: append it to the request as is)."""
    suffix_ids: list[int]
    best_loss: float
    init_loss: float
    losses: list[float]
    """The loss of the suffix taken at each step."""
    steps: int
    seconds: float
    evaluations: int
    """Candidate losses computed (candidates x requests)."""
    stopped_early: bool

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("nan")


_ALLOWED: dict[tuple[str, int], Any] = {}


def allowed_tokens(tokenizer: Any, vocab: int) -> Any:
    """Boolean mask of token ids a suffix may use: printable ASCII that is not blank and not a special token."""
    import torch

    key = (getattr(tokenizer, "name_or_path", ""), vocab)
    if key not in _ALLOWED:
        special = set(tokenizer.all_special_ids)
        mask = torch.zeros(vocab, dtype=torch.bool)
        for i in range(min(vocab, len(tokenizer))):
            text = tokenizer.decode([i])
            mask[i] = i not in special and text.isascii() and text.isprintable() and bool(text.strip())
        _ALLOWED[key] = mask
    return _ALLOWED[key]


class _Request:
    """One request's fixed parts: the prefix's key/value cache, the embeddings after the suffix and of the target."""

    def __init__(self, model: Any, tokenizer: Any, rendered: str, target: str):
        import torch

        if rendered.count(PLACEHOLDER) != 1:
            raise ValueError("the rendered conversation must contain the suffix placeholder once")
        before, after = rendered.split(PLACEHOLDER)
        ids = lambda s: torch.tensor(tokenizer(s, add_special_tokens=False)["input_ids"], dtype=torch.long)  # noqa: E731
        self.before, self.after, self.target = (ids(t).to(model.device) for t in (before, after, target))
        if not len(self.target):
            raise ValueError("empty target")
        emb = model.get_input_embeddings()
        with torch.no_grad():
            out = model(input_ids=self.before[None], use_cache=True)
            self.kv = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
            self.after_emb = emb(self.after[None])
            self.target_emb = emb(self.target[None])

    def cache(self, batch: int) -> Any:
        from transformers import DynamicCache

        return DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1))
                                            for k, v in self.kv])

    def logits(self, model: Any, suffix_emb: Any) -> Any:
        """Logits at the target positions, (batch, target length, vocab)."""
        import torch

        batch = suffix_emb.shape[0]
        embeds = torch.cat([suffix_emb, self.after_emb.expand(batch, -1, -1), self.target_emb.expand(batch, -1, -1)],
                           dim=1)
        out = model(inputs_embeds=embeds, past_key_values=self.cache(batch), use_cache=True,
                    logits_to_keep=len(self.target) + 1)
        return out.logits[:, :-1, :].float()

    def losses(self, model: Any, candidates: Any, batch_size: int) -> tuple[Any, Any]:
        """(mean target cross-entropy, target is the greedy continuation) of each candidate suffix."""
        import torch

        emb = model.get_input_embeddings()
        losses, exact = [], []
        with torch.no_grad():
            for start in range(0, len(candidates), batch_size):
                chunk = candidates[start:start + batch_size]
                logits = self.logits(model, emb(chunk.to(self.target.device)))  # the search itself stays on the CPU
                tgt = self.target[None].expand(len(chunk), -1)
                ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tgt, reduction="none").mean(dim=1)
                losses.append(ce)
                exact.append((logits.argmax(-1) == tgt).all(dim=1))
        return torch.cat(losses).cpu(), torch.cat(exact).cpu()

    def gradient(self, model: Any, suffix: Any) -> Any:
        """d loss / d one-hot suffix, (suffix length, vocab), normalised per position."""
        import torch

        weight = model.get_input_embeddings().weight
        onehot = torch.zeros(len(suffix), weight.shape[0], dtype=weight.dtype, device=weight.device)
        onehot[torch.arange(len(suffix)), suffix] = 1.0
        onehot.requires_grad_(True)
        logits = self.logits(model, (onehot @ weight)[None])
        loss = torch.nn.functional.cross_entropy(logits[0], self.target)
        (grad,) = torch.autograd.grad(loss, [onehot])
        return grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def run_gcg(model: Any, tokenizer: Any, render: Callable[[list[dict[str, str]]], str],
            conversations: Sequence[list[dict[str, str]]], targets: Sequence[str],
            settings: GCGSettings = GCGSettings(), progress: Callable[[int, float], None] | None = None) -> GCGResult:
    """Optimise one suffix for every conversation (its last user turn gets the suffix) towards its target.

    `render` turns a conversation into the model's prompt text (a chat model's `render`, so a system prompt
    that a technique adds is part of what is attacked); `model` / `tokenizer` are the Hugging Face pair behind it.
    """
    import torch

    if len(conversations) != len(targets) or not conversations:
        raise ValueError("give one target per conversation, at least one")
    started = time.perf_counter()
    gen = torch.Generator().manual_seed(settings.seed)
    requests = []
    for conv, target in zip(conversations, targets):
        conv = [dict(m) for m in conv]
        conv[-1]["content"] = conv[-1]["content"] + PLACEHOLDER
        requests.append(_Request(model, tokenizer, render(conv), target))
    vocab = model.get_input_embeddings().weight.shape[0]
    allowed = allowed_tokens(tokenizer, vocab)
    allowed_ids = allowed.nonzero().flatten()
    unit = tokenizer(" x", add_special_tokens=False)["input_ids"]
    suffix = torch.tensor((unit * settings.suffix_tokens)[:settings.suffix_tokens], dtype=torch.long)

    def total(cands: Any) -> tuple[Any, Any]:
        losses, exact = zip(*(r.losses(model, cands, settings.batch_size) for r in requests))
        return torch.stack(losses).mean(0), torch.stack(exact).all(0)

    loss0, exact0 = total(suffix[None])
    best_loss, best, current = float(loss0[0]), suffix.clone(), suffix.clone()
    init_loss, losses, evaluations, stopped, steps = best_loss, [], len(requests), bool(exact0[0]), 0
    while steps < settings.steps and not (stopped and settings.early_stop):
        steps += 1
        width, n = settings.search_width, len(current)
        pos = torch.randint(0, n, (width,), generator=gen)
        if settings.candidates == "gradient":
            grad = sum(r.gradient(model, current) for r in requests).cpu()
            grad[:, ~allowed] = float("inf")
            top = (-grad).topk(settings.topk, dim=1).indices
            tok = top[pos, torch.randint(0, settings.topk, (width,), generator=gen)]
        else:
            tok = allowed_ids[torch.randint(0, len(allowed_ids), (width,), generator=gen)]
        cands = current.repeat(width, 1)
        cands[torch.arange(width), pos] = tok
        texts = tokenizer.batch_decode(cands)
        keep = [i for i, t in enumerate(texts) if tokenizer(t, add_special_tokens=False)["input_ids"]
                == cands[i].tolist()]
        if not keep:
            losses.append(losses[-1] if losses else init_loss)
            continue
        cands = cands[keep]
        cand_loss, exact = total(cands)
        evaluations += len(cands) * len(requests)
        i = int(cand_loss.argmin())
        current = cands[i].clone()
        losses.append(float(cand_loss[i]))
        if losses[-1] < best_loss:
            best_loss, best = losses[-1], current.clone()
        stopped = bool(exact[i])
        if stopped:
            best_loss, best = losses[-1], current.clone()
        if progress is not None:
            progress(steps, losses[-1])
    return GCGResult(suffix=tokenizer.decode(best), suffix_ids=best.tolist(), best_loss=best_loss,
                     init_loss=init_loss, losses=losses, steps=steps, seconds=time.perf_counter() - started,
                     evaluations=evaluations, stopped_early=stopped)
