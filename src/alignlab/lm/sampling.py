"""Temperature and nucleus (top-p) sampling that sorts only the head of the vocabulary.

Holtzman et al. 2020, arXiv:1904.09751.

transformers' `TopPLogitsWarper` sorts the whole vocabulary (49,152 tokens for SmolLM2) for every
row at every decoding step; avoiding it made pool sampling 1.36x faster on a CPU (docs/benchmarks.md).
The nucleus is the shortest head of the sorted distribution whose mass reaches p, so when the
k most likely tokens already hold mass >= p (nearly always at temperature 0.8, p = 0.95) the
nucleus lies inside them and a `topk` of k suffices: the kept set, and therefore the sampled
token under the same seed, is the same as transformers' (up to floating-point rounding exactly at
the boundary). Rows whose head holds less mass fall back to transformers' own warper. We write
this because transformers has no partial-sort top-p.
"""

from __future__ import annotations

from typing import Any

HEAD = 64
"""Tokens examined before falling back to the full sort."""


def _processor_base() -> type:
    from transformers import LogitsProcessor

    return LogitsProcessor


class TemperatureTopP(_processor_base()):  # type: ignore[misc]
    """Divide the scores by `temperature`, then mask everything outside the top-p nucleus with -inf.

    Both steps happen here (pass temperature=1.0 and top_p=1.0 to `generate`), so the order relative
    to transformers' own warpers does not matter. Semantics follow `TopPLogitsWarper`: a token is kept
    iff the mass of the tokens ranked above it is below p; at least one token is kept.
    """

    def __init__(self, temperature: float = 1.0, top_p: float = 1.0, head: int = HEAD):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 (got {temperature})")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1] (got {top_p})")
        self.temperature, self.top_p, self.head = float(temperature), float(top_p), int(head)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch
        from transformers import TopPLogitsWarper

        scores = scores / self.temperature if self.temperature != 1.0 else scores
        if self.top_p >= 1.0:
            return scores
        k = min(self.head, scores.shape[-1])
        probs = scores.float().softmax(dim=-1)
        top, idx = probs.topk(k, dim=-1)  # descending
        above = top.cumsum(dim=-1) - top  # mass ranked strictly above each head token
        keep_head = above < self.top_p
        keep_head[..., 0] = True
        keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, idx, keep_head)
        out = scores.masked_fill(~keep, -float("inf"))
        short = top.sum(dim=-1) < self.top_p  # the nucleus reaches past the head: full sort for these rows
        if bool(short.any()):
            out[short] = TopPLogitsWarper(self.top_p)(input_ids[short], scores[short])
        return out


def sampling_kwargs(temperature: float, top_p: float) -> dict[str, Any]:
    """`generate` keyword arguments for seeded temperature + top-p sampling through `TemperatureTopP`."""
    from transformers import LogitsProcessorList

    return dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                logits_processor=LogitsProcessorList([TemperatureTopP(temperature, top_p)]))


def shared_prefill(model: Any, ids: Any, mask: Any) -> Any:
    """A KV cache of every row's prompt but its last token, computed once per distinct prompt and copied to its rows.

    Best-of-n pools are batches of copies of one prompt; prefilling each copy costs as much as decoding ~40
    tokens for all of them on a CPU (measured: 128 copies of a 49-token prompt took longer to prefill than
    to decode 8 tokens). Pass the result to `generate(past_key_values=...)` with the full `ids` and `mask`:
    generate then computes only the last prompt token and the new ones. Positions follow generate's own rule
    for left padding (cumulative attention mask), so the cached keys are those generate would compute.
    """
    import torch

    uniq, inverse = torch.unique(ids, dim=0, return_inverse=True)
    rep = torch.empty(len(uniq), dtype=torch.long, device=ids.device).scatter_(
        0, inverse, torch.arange(len(ids), device=ids.device))  # ids may be on a GPU
    umask = mask[rep]
    pos = (umask.cumsum(-1) - 1).masked_fill(umask == 0, 1)
    with torch.inference_mode():
        out = model(input_ids=uniq[:, :-1].to(model.device), attention_mask=umask[:, :-1].to(model.device),
                    position_ids=pos[:, :-1].to(model.device), use_cache=True)
    cache = out.past_key_values
    cache.batch_select_indices(inverse.to(model.device))
    return cache
