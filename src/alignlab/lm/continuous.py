"""Continuous batching: a decoding batch whose finished rows are refilled with waiting prompts between steps.

Iteration-level scheduling as in Orca (Yu et al. 2022, "Orca: A Distributed Serving System for Transformer-Based
Generative Models", OSDI) and vLLM (Kwon et al. 2023, arXiv:2309.06180): when a row ends, the next pending prompt is
prefilled and its keys and values are spliced into the freed slot of the batch cache, so the batch stays full
instead of shrinking to the longest answer. `SlotDecoder` is `lm.generate.BatchDecoder` (same kernels, so the same
logits per row) with rows that can be admitted at any step; `generate_continuous` is `prefix_cache.generate_cached`
(same arguments, same results for greedy decoding) scheduled this way, with the prompts' common prefix (the chat
template's system prompt) prefilled once. Neither transformers nor PyTorch offer a CPU continuous-batching loop
over a spliceable cache (transformers' `generate` decodes a fixed batch), hence this module.
"""

from __future__ import annotations

import collections
from typing import Any, Sequence

from alignlab.lm.generate import BatchDecoder, Generation, _decode_weights, _eos_ids
from alignlab.lm.prefix_cache import PrefixStore, RowCache, _extract, _result, _stack, generate_cached


class SlotDecoder(BatchDecoder):
    """A `BatchDecoder` whose live rows are rows [0, rows) of the cache; `admit` appends one at any step.

    Rows stay left-aligned on the columns: a row admitted with n cached tokens when the batch is at column `length`
    takes columns [length - n, length) (everything shifts right first if n > length). Columns left of every live
    row's start are reclaimed by shifting the batch left (`_compact`), so the cache needs room for one row's
    prompt and answer plus slack, not for every row ever admitted.
    """

    def __init__(self, weights: Any, slots: int, capacity: int):
        super().__init__(weights, slots, capacity)
        for buf in (*self.k, *self.v):  # masked columns must hold finite numbers (see BatchDecoder.fill)
            buf.zero_()
        self.slots = slots
        self.rows = 0
        self.shifts = 0

    @classmethod
    def create(cls, model: Any, rows: int, capacity: int) -> "SlotDecoder | None":
        weights = _decode_weights(model)
        return None if weights is None else cls(weights, rows, capacity)

    def reserve(self, span: int) -> None:
        """Make room for rows of up to `span` tokens (prompt and answer): the capacity `capacity(span, 0)` needs,
        copying the live rows into larger buffers if it is short."""
        import torch

        need = capacity(span, 0)
        if need <= self.capacity:
            return
        for bufs in (self.k, self.v):
            for layer, old in enumerate(bufs):
                new = old.new_zeros((old.shape[0], old.shape[1], need, old.shape[3]))
                new[:, :, :self.capacity] = old
                bufs[layer] = new
        valid = torch.zeros((self.valid.shape[0], need), dtype=torch.bool)
        valid[:, :self.capacity] = self.valid
        self.valid, self.capacity = valid, need

    @property
    def free(self) -> int:
        return self.slots - self.rows

    def admit(self, cache: RowCache, n: int) -> int:
        """Put a row with `n` cached tokens (per layer (keys, values) [kv_heads, n, head_dim]) in the next slot; its
        row number."""
        if self.rows >= self.slots:
            raise RuntimeError("no free slot in the decoding batch")
        if n + 1 > self.capacity:
            raise ValueError(f"{n} cached tokens do not fit a capacity of {self.capacity}")
        if self.rows == 0:
            self.length = 0
        if n > self.length:
            self._shift(n - self.length)
        b = self.rows
        self.rows += 1
        self.start[b] = self.length - n
        self.valid[b] = False
        self.valid[b, self.length - n:self.length] = True
        for layer, (keys, values) in enumerate(cache):
            self.k[layer][b, :, self.length - n:self.length] = keys
            self.v[layer][b, :, self.length - n:self.length] = values
        return b

    def step(self, tokens: Any, positions: Any) -> Any:
        if self.length >= self.capacity:
            self._compact()
        return super().step(tokens, positions)

    def _compact(self) -> None:
        lo = min(self.start[:self.rows])
        if lo == 0:
            raise RuntimeError("the decoder's cache is full")
        self._shift(-lo)

    def _shift(self, delta: int) -> None:
        """Move the live rows' columns by `delta` (right if positive)."""
        n, t = self.rows, self.length
        lo = min(self.start[:n], default=t)
        if n and lo < t:
            for buf in (*self.k, *self.v):
                buf[:n, :, lo + delta:t + delta] = buf[:n, :, lo:t].clone()
            self.valid[:n, lo + delta:t + delta] = self.valid[:n, lo:t].clone()
            if delta > 0:
                self.valid[:n, lo:lo + delta] = False
            else:
                self.valid[:n, t + delta:t] = False
        for b in range(n):
            self.start[b] += delta
        self.shifts += 1
        self.length = t + delta


def prefill(model: Any, ids: Sequence[Sequence[int]], past: Sequence[RowCache | None], past_lengths: Sequence[int],
            pad: int) -> tuple[list[RowCache], Any]:
    """Run the new tokens of each prompt (those after its `past_lengths[b]` cached ones) in one left-padded forward;
    each row's cache of the whole prompt and its next-token logits (float32 [rows, vocab])."""
    import torch

    chunks = [list(x[n:]) for x, n in zip(ids, past_lengths)]
    width = max(len(c) for c in chunks)
    past_cache, past_mask = _stack(list(past), list(past_lengths), model.config.num_hidden_layers)
    tok = torch.full((len(ids), width), pad, dtype=torch.long)
    chunk_mask = torch.zeros((len(ids), width), dtype=torch.long)
    pos = torch.zeros((len(ids), width), dtype=torch.long)
    for b, (n, c) in enumerate(zip(past_lengths, chunks)):
        tok[b, width - len(c):] = torch.tensor(c)
        chunk_mask[b, width - len(c):] = 1
        pos[b, width - len(c):] = torch.arange(n, n + len(c))
    mask = torch.cat([past_mask, chunk_mask], dim=1)
    out = model(input_ids=tok, attention_mask=mask, position_ids=pos, past_key_values=past_cache, use_cache=True,
                logits_to_keep=1)  # only the last position's logits: the LM head is a fifth of the model
    return [_extract(out.past_key_values, mask, b) for b in range(len(ids))], out.logits[:, -1].float()


def capacity(longest_prompt: int, max_new_tokens: int) -> int:
    """Cache columns for a continuous batch: twice the longest row, so the batch shifts left at most once every
    (prompt + answer) steps."""
    return 2 * (longest_prompt + max_new_tokens) + 1


def _common_prefix(ids: Sequence[Sequence[int]]) -> int:
    n, shortest = 0, min(len(x) for x in ids)
    while n < shortest - 1 and all(x[n] == ids[0][n] for x in ids):
        n += 1
    return n


def generate_continuous(model: Any, tokenizer: Any, prompts: Sequence[str], store: PrefixStore,
                        max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0,
                        prefill_batch: int = 8, decode_batch: int = 32, stop_at_eos: bool = True) -> list[Generation]:
    """`prefix_cache.generate_cached` with continuous batching: at most `decode_batch` rows decode at once and a
    finished row's slot is refilled with the next waiting prompt (prefilled in groups of up to `prefill_batch`).

    Sampling (temperature > 0) draws every prompt's tokens from its own generator, seeded by (`seed`, the prompt's
    index), so a prompt's sample does not depend on what it is batched with. Models `BatchDecoder` cannot run
    fall back to `generate_cached`.
    """
    import torch

    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1 (got {max_new_tokens})")
    if not prompts:
        return []
    ids = [list(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    slots = max(1, min(int(decode_batch), len(ids)))
    dec = SlotDecoder.create(model, slots, capacity(max(map(len, ids)), max_new_tokens))
    if dec is None:
        return generate_cached(model, tokenizer, prompts, store, max_new_tokens=max_new_tokens,
                               temperature=temperature, seed=seed, prefill_batch=prefill_batch,
                               decode_batch=decode_batch, stop_at_eos=stop_at_eos)
    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos)
    if not stop_at_eos:
        eos = set()
    results: list[Generation | None] = [None] * len(ids)
    gens = [torch.Generator().manual_seed(int(seed) * 1_000_003 + i) for i in range(len(ids))] if temperature > 0 \
        else []
    with torch.inference_mode():
        shared = _common_prefix(ids) if len(ids) > 1 else 0
        if shared >= 8 and store.lookup(ids[0][:shared + 1])[1] < shared:  # the system prompt, once
            cache, _ = prefill(model, [ids[0][:shared]], [None], [0], pad)
            store.add(ids[0][:shared], cache[0])
        pending = collections.deque(sorted(range(len(ids)), key=lambda i: len(ids[i]) - store.lookup(ids[i])[1]))
        active: list[int] = []  # prompt index of each live row
        generated: dict[int, list[int]] = {}
        last = torch.empty((0, 0))
        positions = torch.empty(0, dtype=torch.long)
        while pending or active:
            # 1. refill free slots, a prefill group at a time (a lone small group wastes the prefill's matmuls)
            while pending and (dec.free >= min(prefill_batch, len(pending)) or not active):
                take = [pending.popleft() for _ in range(min(dec.free, prefill_batch, len(pending)))]
                found = [store.lookup(ids[i]) for i in take]
                caches, logits = prefill(model, [ids[i] for i in take], [f[0] for f in found], [f[1] for f in found],
                                         pad)
                for i, cache in zip(take, caches):
                    store.add(ids[i], cache)
                    dec.admit(cache, len(ids[i]))
                    generated[i] = []
                active += take
                last = logits if last.numel() == 0 else torch.cat([last, logits])
                positions = torch.cat([positions, torch.tensor([len(ids[i]) for i in take])])
            # 2. choose every row's next token; finished rows give their slot back
            if gens:
                probs = torch.softmax(last / temperature, dim=-1)
                nxt = torch.stack([torch.multinomial(probs[b], 1, generator=gens[i])[0] for b, i in enumerate(active)])
            else:
                nxt = last.argmax(dim=-1)
            keep = []
            for b, (i, t) in enumerate(zip(active, nxt.tolist())):
                generated[i].append(t)
                if t in eos or len(generated[i]) == max_new_tokens:
                    store.discard(ids[i])  # superseded by the longer sequence (the cache holds all but the last)
                    store.add(ids[i] + generated[i][:-1], dec.row_cache(b))
                    results[i] = _result(tokenizer, generated.pop(i), len(ids[i]), t in eos)
                else:
                    keep.append(b)
            order = dec.select(keep) if len(keep) < len(active) else keep
            sel = torch.tensor(order, dtype=torch.long)
            active = [active[b] for b in order]
            if not active:
                last, positions = torch.empty((0, 0)), torch.empty(0, dtype=torch.long)
                continue
            last = dec.step(nxt[sel], positions[sel])
            positions = positions[sel] + 1
    return [r for r in results if r is not None]
