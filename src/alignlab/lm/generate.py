"""Batched generation and continuation log-probabilities for Hugging Face causal LMs.

Batched decoding with a KV cache through `model.generate` (left padding, prompts sorted by
length so a batch wastes little on padding), greedy or seeded sampling; and the summed
log-probability of given continuations (the scoring used by lm-evaluation-harness, Gao et
al. 2021, for multiple-choice answers). Chat prompts are rendered with the tokenizer's own
chat template (transformers `apply_chat_template`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

Message = dict[str, str]


@dataclasses.dataclass(frozen=True)
class Generation:
    """One completion: its text and token counts (what an OpenAI-style server reports)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    """'stop' (the model ended its turn) or 'length' (max_new_tokens reached)."""


def render_chat(tokenizer: Any, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
    """The prompt text for a conversation, through the tokenizer's chat template.

    A tokenizer without a template (a base model) gets a plain 'role: content' transcript.
    """
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(list(messages), tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    return text + ("assistant: " if add_generation_prompt else "")


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    eos = getattr(model.generation_config, "eos_token_id", None)
    for value in (eos if isinstance(eos, (list, tuple)) else [eos]):
        if value is not None:
            ids.add(int(value))
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
) -> list[Generation]:
    """Complete each rendered prompt; batched, order preserved.

    temperature 0 is greedy (deterministic); above 0 samples, seeded by `seed` (the global
    torch RNG is left as it was). The same call gives the same outputs; a different batch
    composition may change sampled outputs (one RNG stream per batch).
    """
    import torch

    if not prompts:
        return []
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1 (got {max_new_tokens})")
    batch_size = max(1, int(batch_size))
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos)
    out: list[Generation | None] = [None] * len(prompts)
    sample = temperature > 0
    kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=sorted(eos),
                                  do_sample=sample)
    if sample:
        from alignlab.lm.sampling import sampling_kwargs

        kwargs.update(sampling_kwargs(temperature, top_p))
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    device = next(model.parameters()).device
    for b, start in enumerate(range(0, len(order), batch_size)):
        idx = order[start:start + batch_size]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):  # left padding: every prompt ends at column `width`
            n = len(encoded[i])
            ids[row, width - n:] = torch.tensor(encoded[i], dtype=torch.long)
            mask[row, width - n:] = 1
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            if sample:
                torch.manual_seed(seed * 1_000_003 + b)
            seqs = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
        new = seqs[:, width:].tolist()
        for row, i in enumerate(idx):
            tokens = new[row]
            end = next((k for k, t in enumerate(tokens) if t in eos), None)
            kept = tokens if end is None else tokens[:end]
            out[i] = Generation(
                text=tokenizer.decode(kept, skip_special_tokens=True).strip(),
                prompt_tokens=len(encoded[i]),
                completion_tokens=len(kept) + (end is not None),
                finish_reason="stop" if end is not None else "length",
            )
    return [g for g in out if g is not None]


def continuation_logprobs(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    continuations: Sequence[str],
    batch_size: int = 16,
) -> list[float]:
    """Sum of log P(continuation tokens | prompt) for each (prompt, continuation) pair.

    Prompt and continuation are tokenized separately and concatenated, so the continuation's
    tokens are the same whatever the prompt ends with (as in lm-evaluation-harness). Pairs
    that share a prompt share its forward pass: the common token prefix of the group is run
    once and its KV cache is reused for every continuation (five 1-5 ratings after one long
    prompt cost about one forward pass, not five).
    """
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(p, []).append(i)
    out = [0.0] * len(prompts)
    for prompt, idx in groups.items():
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if not p_ids:
            p_ids = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id]
        seqs = []
        for i in idx:
            c_ids = tokenizer(continuations[i], add_special_tokens=False)["input_ids"]
            if not c_ids:
                raise ValueError(f"empty continuation {continuations[i]!r}")
            seqs.append(p_ids + c_ids)
        for start in range(0, len(idx), max(1, batch_size)):
            chunk = slice(start, start + batch_size)
            scores = _score_group(model, tokenizer, seqs[chunk], len(p_ids))
            for i, v in zip(idx[chunk], scores):
                out[i] = v
    return out


def _score_group(model: Any, tokenizer: Any, seqs: list[list[int]], n_prompt: int) -> list[float]:
    """Summed log-probs of tokens n_prompt.. of each sequence; the common prefix runs once."""
    import torch

    n_common = n_prompt
    shortest = min(len(s) for s in seqs)
    while n_common < shortest - 1 and all(s[n_common] == seqs[0][n_common] for s in seqs):
        n_common += 1
    device = next(model.parameters()).device
    with torch.inference_mode():
        prefix = torch.tensor([seqs[0][:n_common]], dtype=torch.long, device=device)
        first = model(input_ids=prefix, use_cache=True)
        logp = torch.log_softmax(first.logits[0].float(), dim=-1)  # [n_common, vocab]
        shared = sum(float(logp[t - 1, seqs[0][t]]) for t in range(n_prompt, n_common))
        scores = [shared + float(logp[-1, s[n_common]]) for s in seqs]
        rest = [s[n_common:] for s in seqs]  # suffix tokens; the first is scored above
        width = max(len(r) for r in rest) - 1
        if width > 0:
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), n_common + width), dtype=torch.long)
            mask[:, :n_common] = 1
            for row, r in enumerate(rest):
                ids[row, :len(r) - 1] = torch.tensor(r[:-1], dtype=torch.long)
                mask[row, n_common:n_common + len(r) - 1] = 1
            cache = first.past_key_values
            cache.batch_repeat_interleave(len(seqs))
            second = model(input_ids=ids.to(device), attention_mask=mask.to(device), past_key_values=cache)
            logp2 = torch.log_softmax(second.logits.float(), dim=-1)
            for row, r in enumerate(rest):
                for k in range(1, len(r)):
                    scores[row] += float(logp2[row, k - 1, r[k]])
    return scores
