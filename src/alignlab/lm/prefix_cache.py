"""Batched generation that reuses the KV cache of earlier turns (automatic prefix caching).

A multi-turn evaluation asks for turn k+1 with a prompt that extends turn k's prompt and
reply. Re-encoding the whole history every turn makes prefill, not decoding, the cost on a
CPU (prefill runs at the matmul limit whatever the batch). Like vLLM's automatic prefix
caching (Kwon et al. 2023, "Efficient Memory Management for Large Language Model Serving
with PagedAttention", arXiv:2309.06180), each finished sequence's keys and values are kept,
per row, in a bounded store; a new prompt that starts with a stored sequence prefills only
its new tokens. Decoding runs all rows in one batch and drops rows from it as they finish,
so short answers do not wait for long ones. transformers' `generate` can do neither, hence
this small loop (greedy, or seeded sampling with temperature).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

from alignlab.lm.compiled_step import CompiledDecoder
from alignlab.lm.generate import BatchDecoder, Generation, _eos_ids

RowCache = list  # per layer: (keys [heads, length, dim], values [heads, length, dim])


class PrefixStore:
    """KV caches of token sequences, looked up by longest common prefix; least recently used
    entries are evicted beyond `max_bytes`."""

    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple[int, ...], RowCache] = OrderedDict()
        self.bytes = 0
        self.hits = self.reused_tokens = 0

    @staticmethod
    def _size(cache: RowCache) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in cache)

    def add(self, ids: Sequence[int], cache: RowCache) -> None:
        key = tuple(ids)
        if key in self.entries:
            self.entries.move_to_end(key)
            return
        self.entries[key] = cache
        self.bytes += self._size(cache)
        while self.bytes > self.max_bytes and len(self.entries) > 1:
            _, old = self.entries.popitem(last=False)
            self.bytes -= self._size(old)

    def discard(self, ids: Sequence[int]) -> None:
        old = self.entries.pop(tuple(ids), None)
        if old is not None:
            self.bytes -= self._size(old)

    def lookup(self, ids: Sequence[int]) -> tuple[RowCache | None, int]:
        """The stored cache sharing the longest prefix with `ids`, and that prefix's length
        (at most len(ids) - 1, so at least one token is left to compute the next logits)."""
        best, best_n = None, 0
        limit = len(ids) - 1
        for key in reversed(self.entries):
            n = 0
            m = min(len(key), limit)
            while n < m and key[n] == ids[n]:
                n += 1
            if n > best_n:
                best, best_n = key, n
        if best is None:
            return None, 0
        self.entries.move_to_end(best)
        self.hits += 1
        self.reused_tokens += best_n
        return [(k[:, :best_n], v[:, :best_n]) for k, v in self.entries[best]], best_n

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0


def _stack(rows: list[RowCache | None], lengths: list[int], n_layers: int) -> tuple[Any, Any]:
    """Left-pad per-row caches to one batch cache; returns (DynamicCache or None, past mask [B, L])."""
    import torch
    from transformers import DynamicCache

    width = max(lengths)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, width - n:] = 1
    if width == 0:
        return None, mask
    layers = []
    for layer in range(n_layers):
        ref_k, ref_v = next(r[layer] for r, n in zip(rows, lengths) if n)
        keys = ref_k.new_zeros((len(rows), ref_k.shape[0], width, ref_k.shape[2]))
        values = ref_v.new_zeros((len(rows), ref_v.shape[0], width, ref_v.shape[2]))
        for b, (r, n) in enumerate(zip(rows, lengths)):
            if n:
                keys[b, :, width - n:] = r[layer][0]
                values[b, :, width - n:] = r[layer][1]
        layers.append((keys, values))
    return DynamicCache(layers), mask


def _growing_layer_class() -> type:
    from transformers.cache_utils import CacheLayerMixin

    class GrowingLayer(_GrowingLayer, CacheLayerMixin):
        pass

    return GrowingLayer


class _GrowingLayer:
    """A cache layer with room preallocated for the tokens still to come: appending writes in
    place (transformers' DynamicLayer re-concatenates the whole cache at every step)."""

    is_sliding = False
    is_compileable = False

    def __init__(self, keys: Any, values: Any, room: int):
        import torch

        b, h, n, d = keys.shape
        self.buf_k = torch.empty((b, h, n + room, d), dtype=keys.dtype)
        self.buf_v = torch.empty((b, h, n + room, d), dtype=values.dtype)
        self.buf_k[:, :, :n] = keys
        self.buf_v[:, :, :n] = values
        self.length = n
        self.is_initialized = True
        self.dtype, self.device = keys.dtype, keys.device

    @property
    def keys(self) -> Any:
        return self.buf_k[:, :, :self.length]

    @property
    def values(self) -> Any:
        return self.buf_v[:, :, :self.length]

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        n = key_states.shape[-2]
        if self.length + n > self.buf_k.shape[2]:
            raise RuntimeError("prefix cache layer is full")
        self.buf_k[:, :, self.length:self.length + n] = key_states
        self.buf_v[:, :, self.length:self.length + n] = value_states
        self.length += n
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def get_max_length(self) -> int:
        return -1

    def lazy_initialization(self, key_states: Any, value_states: Any) -> None:  # always initialized
        pass

    def batch_select_indices(self, indices: Any) -> None:
        self.buf_k, self.buf_v = self.buf_k[indices], self.buf_v[indices]


def _growing(cache: Any, room: int) -> Any:
    layer_cls = _growing_layer_class()
    cache.layers = [layer_cls(layer.keys, layer.values, room) for layer in cache.layers]
    return cache


def _extract(cache: Any, mask: Any, row: int) -> RowCache:
    """Row `row`'s keys and values at its valid (unmasked) positions."""
    idx = mask[row].nonzero().squeeze(1)
    return [(layer.keys[row][:, idx].clone(), layer.values[row][:, idx].clone()) for layer in cache.layers]


def generate_cached(model: Any, tokenizer: Any, prompts: Sequence[str], store: PrefixStore,
                    max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0,
                    prefill_batch: int = 8, decode_batch: int = 32, stop_at_eos: bool = True) -> list[Generation]:
    """Like lm.generate.generate, reusing `store`'s caches for prompt prefixes and adding each
    finished sequence (prompt + reply) to it. `stop_at_eos=False` runs every row to `max_new_tokens` (for
    throughput measurements at a fixed length)."""
    import torch

    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1 (got {max_new_tokens})")
    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos)
    if not stop_at_eos:
        eos = set()
    n_layers = model.config.num_hidden_layers
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    found = [store.lookup(x) for x in ids]
    rows: list[RowCache | None] = [f[0] for f in found]
    lengths = [f[1] for f in found]
    logits_last: list[Any] = [None] * len(ids)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.inference_mode():
        # 1. prefill the new part of every prompt, in small batches of rows of similar length
        #    (prefill is compute-bound: small batches cost nothing and waste little on padding)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]) - lengths[i])
        for start in range(0, len(order), max(1, prefill_batch)):
            batch = order[start:start + prefill_batch]
            if start:  # rows prefilled just before may share a longer prefix (the system prompt, the question)
                for i in batch:
                    again = store.lookup(ids[i])
                    if again[1] > lengths[i]:
                        rows[i], lengths[i] = again
            chunks = [ids[i][lengths[i]:] for i in batch]
            width = max(len(c) for c in chunks)
            past, past_mask = _stack([rows[i] for i in batch], [lengths[i] for i in batch], n_layers)
            tok = torch.full((len(batch), width), pad, dtype=torch.long)
            chunk_mask = torch.zeros((len(batch), width), dtype=torch.long)
            pos = torch.zeros((len(batch), width), dtype=torch.long)
            for b, (i, c) in enumerate(zip(batch, chunks)):
                tok[b, width - len(c):] = torch.tensor(c)
                chunk_mask[b, width - len(c):] = 1
                pos[b, width - len(c):] = torch.arange(lengths[i], lengths[i] + len(c))
            mask = torch.cat([past_mask, chunk_mask], dim=1)
            out = model(input_ids=tok, attention_mask=mask, position_ids=pos, past_key_values=past, use_cache=True,
                        logits_to_keep=1)  # only the last position's logits: the LM head is a fifth of the model
            for b, i in enumerate(batch):
                rows[i] = _extract(out.past_key_values, mask, b)
                lengths[i] = len(ids[i])
                logits_last[i] = out.logits[b, -1].float()
                store.add(ids[i], rows[i])
        # 2. decode every row in one batch, dropping rows as they finish
        results: list[Generation | None] = [None] * len(ids)
        for start in range(0, len(ids), max(1, decode_batch)):
            active = list(range(start, min(len(ids), start + decode_batch)))
            generated: dict[int, list[int]] = {i: [] for i in active}
            steps = _Steps(model, [rows[i] for i in active], [lengths[i] for i in active], n_layers, max_new_tokens)
            last = torch.stack([logits_last[i] for i in active])
            positions = torch.tensor([lengths[i] for i in active])
            for step in range(max_new_tokens):
                if temperature > 0:
                    probs = torch.softmax(last / temperature, dim=-1)
                    nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)
                else:
                    nxt = last.argmax(dim=-1)
                keep = []
                for b, (i, t) in enumerate(zip(active, nxt.tolist())):
                    generated[i].append(t)
                    done = t in eos or step == max_new_tokens - 1
                    if done:
                        fed = ids[i] + generated[i][:-1]  # the cache holds every token but the last
                        store.discard(ids[i])  # superseded by the longer sequence
                        store.add(fed, steps.row_cache(b))
                        results[i] = _result(tokenizer, generated[i], len(ids[i]), t in eos)
                    else:
                        keep.append(b)
                if not keep:
                    break
                if len(keep) < len(active):
                    order = steps.select(keep)  # the rows kept, possibly reordered
                    sel = torch.tensor(order)
                    nxt, positions = nxt[sel], positions[sel]
                    active = [active[b] for b in order]
                last = steps.step(nxt, positions)
                positions = positions + 1
    return [r for r in results if r is not None]


class _Steps:
    """One-token decoding steps over a batch of rows from per-row caches: `generate.BatchDecoder` where the model
    allows it (same logits, less overhead per step; at batch 1, where enabled, `compiled_step.CompiledDecoder`),
    else transformers' forward on a preallocated cache."""

    def __init__(self, model: Any, rows: list[RowCache | None], lengths: list[int], n_layers: int, room: int):
        self.model = model
        self.fast = (CompiledDecoder.create(model, len(rows), max(lengths) + room)  # opt-in, batch 1 only
                     or BatchDecoder.create(model, len(rows), max(lengths) + room))
        if self.fast is not None:
            self.fast.fill(rows, lengths)
            return
        cache, self.mask = _stack(rows, lengths, n_layers)
        self.cache = _growing(cache, room)

    def step(self, tokens: Any, positions: Any) -> Any:
        """Feed one token per row; the next-token logits (float32, [rows, vocab])."""
        import torch

        if self.fast is not None:
            return self.fast.step(tokens, positions)
        self.mask = torch.cat([self.mask, torch.ones((len(tokens), 1), dtype=torch.long)], dim=1)
        out = self.model(input_ids=tokens[:, None], attention_mask=self.mask, position_ids=positions[:, None],
                         past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        return out.logits[:, -1].float()

    def select(self, keep: list[int]) -> list[int]:
        """Keep rows `keep`; their new order (old row numbers, by new row)."""
        import torch

        if self.fast is not None:
            return self.fast.select(keep)
        sel = torch.tensor(keep)
        self.cache.batch_select_indices(sel)
        self.mask = self.mask[sel]
        return list(keep)

    def row_cache(self, b: int) -> RowCache:
        return self.fast.row_cache(b) if self.fast is not None else _extract(self.cache, self.mask, b)


def _result(tokenizer: Any, tokens: list[int], n_prompt: int, stopped: bool) -> Generation:
    kept = tokens[:-1] if stopped else tokens
    return Generation(text=tokenizer.decode(kept, skip_special_tokens=True).strip(), prompt_tokens=n_prompt,
                      completion_tokens=len(tokens), finish_reason="stop" if stopped else "length")
