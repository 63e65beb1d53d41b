"""Batched decoding for `alignlab serve`: every row (one choice of one request) keeps its own settings.

Rows that arrive together share one prefill (identical prompts, as the n choices of one request, are
computed once) and one decoding loop over a KV cache; a row leaves the batch as soon as it ends. Where
the model has fast decoding steps (`SlotBatch`), rows of requests that arrive later join the running
batch between steps (continuous batching, as in Orca, Yu et al. 2022); otherwise `decode_rows` decodes
the rows taken together to their end. Each
row has its own sampling generator, temperature and top-p (lm/sampling.py's `TemperatureTopP`, the
same nucleus as transformers'), so a seeded request gives the same text whatever it is batched with
(up to floating-point rounding of batched matrix products). Stop sequences are matched on the decoded
text; text is released to a streaming client only once it can no longer turn into a stop sequence or
an incomplete UTF-8 character. Log-probabilities are those of the model's own distribution (before
temperature and top-p), as in the OpenAI API reference's `logprobs` fields.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable, Sequence

from alignlab.lm.generate import _eos_ids

MIN_LOGPROB = -9999.0
"""Stands in for -inf (JSON has no infinity)."""


@dataclasses.dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]]
    """The most likely tokens at this position, most likely first."""


@dataclasses.dataclass
class Delta:
    """New output of one row, sent to a streaming client."""

    text: str
    logprobs: list[TokenLogprob]
    finish_reason: str | None


@dataclasses.dataclass
class Seq:
    """What to generate for one row."""

    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    logprobs: int | None = None
    """None: no log-probabilities; k >= 0: the chosen token's and the k most likely ones."""
    chat: bool = False
    """Strip surrounding whitespace, as the local chat model does (lm/generate.py)."""


class ServedLM:
    """A local chat model (`LocalChatModel`, or a technique wrapping one) as the engine uses it:
    its Hugging Face model and tokenizer, its chat rendering, context length and end tokens.
    Tokenizer calls are serialized (a fast tokenizer is not meant to be shared between threads)."""

    def __init__(self, chat_model: Any, context_length: int | None = None):
        for attr in ("model", "tokenizer", "render"):
            if not hasattr(chat_model, attr):
                raise TypeError(f"alignlab serve needs a local Hugging Face chat model (no {attr!r} on {chat_model!r})")
        self.chat_model = chat_model
        self.model = chat_model.model
        self.tokenizer = chat_model.tokenizer
        self.eos = _eos_ids(self.model, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad = int(pad) if pad is not None else min(self.eos)
        self.vocab = max(len(self.tokenizer), int(getattr(self.model.config, "vocab_size", 0) or 0))
        limits = [getattr(self.model.config, "max_position_embeddings", None),
                  getattr(self.tokenizer, "model_max_length", None), context_length]
        self.context = min((int(v) for v in limits if isinstance(v, int) and 0 < v < 10**7), default=4096)
        self.device = next(self.model.parameters()).device
        self._lock = threading.Lock()
        self._texts: dict[int, str] = {}

    def chat_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        text = self.chat_model.render(list(messages))
        with self._lock:
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, text: str) -> list[int]:
        with self._lock:
            return list(self.tokenizer(text)["input_ids"])

    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
        with self._lock:
            return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special)

    def token_text(self, token: int) -> str:
        text = self._texts.get(token)
        if text is None:
            text = self._texts[token] = self.decode([token], skip_special=False)
        return text


class Row:
    """One sequence being generated, and what it has produced so far."""

    def __init__(self, lm: ServedLM, seq: Seq, emit: Callable[[Delta], None] | None = None):
        self.lm, self.seq, self.emit = lm, seq, emit
        self.tokens: list[int] = []
        self.entries: list[TokenLogprob] = []
        self.generated = 0
        self.text = ""
        self.finish_reason: str | None = None
        self.track = bool(seq.stop) or emit is not None  # decode as we go
        self._ends: list[int] = []  # decoded length after each token (when tracking)
        self._full = ""
        self._sent_chars = self._sent_tokens = 0
        self._max_stop = max((len(s) for s in seq.stop), default=0)

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def _view(self, text: str) -> str:
        return text.lstrip() if self.seq.chat else text

    def push(self, token: int, entry: TokenLogprob | None) -> None:
        self.generated += 1
        if token in self.lm.eos:
            self._finish("stop")
            return
        self.tokens.append(token)
        if entry is not None:
            self.entries.append(entry)
        if self.track:
            before = len(self._full)
            self._full = self._view(self.lm.decode(self.tokens))
            self._ends.append(len(self._full))
            if self.seq.stop:
                start = max(0, before - self._max_stop)
                hits = [i for i in (self._full.find(s, start) for s in self.seq.stop) if i >= 0]
                if hits:
                    self._finish("stop", cut=min(hits))
                    return
        if self.generated >= self.seq.max_tokens:
            self._finish("length")
        elif self.emit is not None:
            self._release()

    def finish_empty(self) -> None:
        """max_tokens 0: nothing to generate."""
        self._finish("length")

    def _finish(self, reason: str, cut: int | None = None) -> None:
        if cut is not None:
            keep = next((k for k, end in enumerate(self._ends, 1) if end >= cut), len(self.tokens)) if cut else 0
            self.tokens, self.entries = self.tokens[:keep], self.entries[:keep]
            text = self._full[:cut]
        elif self.track:
            text = self._full
        else:
            text = self._view(self.lm.decode(self.tokens))
        self.text = text.rstrip() if self.seq.chat else text
        self.finish_reason = reason
        if self.emit is not None:
            self.emit(Delta(self.text[self._sent_chars:], self.entries[self._sent_tokens:], reason))

    def _release(self) -> None:
        """Send the text that can no longer change: not a possible start of a stop sequence, not an
        incomplete character, and (chat) not trailing whitespace that the final strip would remove."""
        full = self._full
        hold = len(full) - len(full.rstrip("\ufffd"))
        if self.seq.chat:
            hold = max(hold, len(full) - len(full.rstrip()))
        for s in self.seq.stop:
            for n in range(min(len(s) - 1, len(full)), hold, -1):
                if full.endswith(s[:n]):
                    hold = n
                    break
        safe = len(full) - hold
        text = full[self._sent_chars:safe] if safe > self._sent_chars else ""
        self._sent_chars = max(self._sent_chars, safe)
        k = self._sent_tokens
        while k < len(self._ends) and k < len(self.entries) and self._ends[k] <= self._sent_chars:
            k += 1
        entries, self._sent_tokens = self.entries[self._sent_tokens:k], k
        if (text or entries) and self.emit is not None:
            self.emit(Delta(text, entries, None))


def _entries(lm: ServedLM, logp: Any, chosen: Sequence[int], ks: Sequence[int]) -> list[TokenLogprob]:
    """Log-probability entries for rows of `logp` ([rows, vocab]): the chosen token's and the top k."""
    import torch

    out = []
    kmax = max(ks, default=0)
    top_v, top_i = (logp.topk(kmax, dim=-1) if kmax else (None, None))
    picked = logp.gather(1, torch.tensor(chosen, device=logp.device)[:, None])[:, 0].tolist()
    for row, (tok, k) in enumerate(zip(chosen, ks)):
        top = []
        if k:
            vals, ids = top_v[row, :k].tolist(), top_i[row, :k].tolist()
            top = [(lm.token_text(i), max(v, MIN_LOGPROB)) for i, v in zip(ids, vals)]
        out.append(TokenLogprob(lm.token_text(tok), max(picked[row], MIN_LOGPROB), top))
    return out


def _choose(lm: ServedLM, last: Any, rows: Sequence[Row], generators: Sequence[Any]) -> tuple[list[int], list[Any]]:
    """The next token of every row (greedy at temperature 0, else sampled with the row's generator)."""
    import torch

    from alignlab.lm.sampling import TemperatureTopP

    chosen = last.argmax(dim=-1).tolist()
    groups: dict[tuple[float, float], list[int]] = {}
    for b, row in enumerate(rows):
        if row.seq.temperature > 0:
            groups.setdefault((row.seq.temperature, row.seq.top_p), []).append(b)
    for (temperature, top_p), idx in groups.items():
        sel = torch.tensor(idx, device=last.device)
        scores = TemperatureTopP(temperature, top_p)(torch.zeros((len(idx), 1), dtype=torch.long, device=last.device),
                                                    last[sel])
        probs = scores.softmax(dim=-1)
        for j, b in enumerate(idx):
            chosen[b] = int(torch.multinomial(probs[j], 1, generator=generators[b]))
    entries: list[Any] = [None] * len(rows)
    want = [b for b, row in enumerate(rows) if row.seq.logprobs is not None]
    if want:
        sel = torch.tensor(want, device=last.device)
        logp = torch.log_softmax(last[sel], dim=-1)
        for b, e in zip(want, _entries(lm, logp, [chosen[b] for b in want], [rows[b].seq.logprobs or 0 for b in want])):
            entries[b] = e
    return chosen, entries


def generator(device: Any, seed: int) -> Any:
    import torch

    return torch.Generator(device=device).manual_seed(int(seed) % (1 << 64))


def _unfinished(rows: Sequence[Row]) -> list[Row]:
    """The rows with tokens to generate; a row asking for none is answered empty here."""
    todo = []
    for row in rows:
        if row.seq.max_tokens < 1:
            row.finish_empty()
        else:
            todo.append(row)
    return todo


def decode_rows(lm: ServedLM, rows: Sequence[Row], alive: Callable[[Row], bool]) -> None:
    """Generate every row to its end (or until `alive(row)` is False, which drops it unfinished)."""
    import torch

    todo = _unfinished(rows)
    if not todo:
        return
    dev = lm.device
    keys: dict[tuple[int, ...], int] = {}
    inverse = [keys.setdefault(tuple(r.seq.prompt_ids), len(keys)) for r in todo]
    uniq = list(keys)
    width = max(len(u) for u in uniq)
    ids = torch.full((len(uniq), width), lm.pad, dtype=torch.long)
    mask = torch.zeros((len(uniq), width), dtype=torch.long)
    for b, u in enumerate(uniq):  # left padding: every prompt ends at the last column
        ids[b, width - len(u):] = torch.tensor(u, dtype=torch.long)
        mask[b, width - len(u):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    gens = [generator(dev, r.seq.seed) for r in todo]
    with torch.inference_mode():
        out = lm.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev), use_cache=True,
                       logits_to_keep=1)
        inv = torch.tensor(inverse, dtype=torch.long)
        cache = out.past_key_values
        if len(uniq) != len(todo):
            cache.batch_select_indices(inv.to(dev))
        last = out.logits[:, -1].float()[inv.to(dev)]
        mask = mask[inv].to(dev)
        positions = torch.tensor([len(r.seq.prompt_ids) for r in todo], dtype=torch.long, device=dev)
        active = list(range(len(todo)))
        while True:
            chosen, entries = _choose(lm, last, [todo[i] for i in active], [gens[i] for i in active])
            keep = []
            for b, i in enumerate(active):
                row = todo[i]
                row.push(chosen[b], entries[b])
                if not row.finished and alive(row):
                    keep.append(b)
            if not keep:
                return
            nxt = torch.tensor(chosen, dtype=torch.long, device=dev)
            if len(keep) < len(active):
                sel = torch.tensor(keep, dtype=torch.long, device=dev)
                cache.batch_select_indices(sel)
                mask, positions, nxt = mask[sel], positions[sel], nxt[sel]
                active = [active[b] for b in keep]
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long, device=dev)], dim=1)
            out = lm.model(input_ids=nxt[:, None], attention_mask=mask, position_ids=positions[:, None],
                           past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            positions = positions + 1
            last = out.logits[:, -1].float()


class SlotBatch:
    """Rows of any number of requests decoding in one batch, joined by new rows between steps (continuous batching,
    lm/continuous.py): `admit` prefills rows into free slots, `step` gives every live row its next token and frees
    the slots of rows that ended or whose request is gone. Only for models `lm.generate.BatchDecoder` runs
    (`supported`); the engine decodes other models a batch at a time with `decode_rows`."""

    def __init__(self, lm: ServedLM, slots: int):
        from alignlab.lm.continuous import SlotDecoder

        self.lm, self.slots = lm, slots
        self.dec = SlotDecoder.create(lm.model, slots, 64)
        if self.dec is None:
            raise ValueError("this model has no fast decoding steps; use decode_rows")
        self.rows: list[Row] = []
        self.gens: list[Any] = []
        self.last: Any = None
        self.positions: list[int] = []

    @staticmethod
    def supported(lm: ServedLM) -> bool:
        from alignlab.lm.generate import _decode_weights

        return lm.device.type == "cpu" and _decode_weights(lm.model) is not None

    @property
    def free(self) -> int:
        return self.slots - len(self.rows)

    def admit(self, rows: Sequence[Row]) -> None:
        """Prefill `rows` (at most `free`; identical prompts once) and add them to the batch."""
        import torch

        from alignlab.lm.continuous import prefill

        todo = _unfinished(rows)
        if not todo:
            return
        if len(todo) > self.free:
            raise RuntimeError(f"{len(todo)} rows do not fit {self.free} free slots")
        keys: dict[tuple[int, ...], int] = {}
        inverse = [keys.setdefault(tuple(r.seq.prompt_ids), len(keys)) for r in todo]
        uniq = [list(k) for k in keys]
        self.dec.reserve(max(len(r.seq.prompt_ids) + r.seq.max_tokens for r in todo))
        with torch.inference_mode():
            caches, logits = prefill(self.lm.model, uniq, [None] * len(uniq), [0] * len(uniq), self.lm.pad)
        for row, u in zip(todo, inverse):
            self.dec.admit(caches[u], len(uniq[u]))
            self.rows.append(row)
            self.gens.append(generator(self.lm.device, row.seq.seed))
            self.positions.append(len(uniq[u]))
        new = logits[torch.tensor(inverse)]
        self.last = new if self.last is None else torch.cat([self.last, new])

    def step(self, alive: Callable[[Row], bool]) -> None:
        """One token for every row; rows that end (or are no longer `alive`) leave the batch."""
        import torch

        if not self.rows:
            return
        chosen, entries = _choose(self.lm, self.last, self.rows, self.gens)
        keep = []
        for b, row in enumerate(self.rows):
            row.push(chosen[b], entries[b])
            if not row.finished and alive(row):
                keep.append(b)
        order = self.dec.select(keep) if len(keep) < len(self.rows) else keep
        self.rows = [self.rows[b] for b in order]
        self.gens = [self.gens[b] for b in order]
        feed = [self.positions[b] for b in order]
        self.positions = [p + 1 for p in feed]
        if not self.rows:
            self.last = None
            return
        with torch.inference_mode():
            self.last = self.dec.step(torch.tensor([chosen[b] for b in order], dtype=torch.long),
                                      torch.tensor(feed, dtype=torch.long))


def score_prompt(lm: ServedLM, ids: Sequence[int], k: int, alive: Callable[[], bool] = lambda: True,
                 chunk: int = 256) -> list[TokenLogprob | None] | None:
    """Each prompt token's log-probability given the tokens before it (None for the first), with the k most
    likely alternatives: what `echo` with `logprobs` returns. Runs in chunks over a KV cache, so memory
    grows with `chunk` x vocabulary, not with the prompt length. None when `alive()` turns False."""
    import torch

    out: list[TokenLogprob | None] = [None]
    cache = None
    with torch.inference_mode():
        for start in range(0, len(ids) - 1, chunk):
            if not alive():
                return None
            part = list(ids[start:min(start + chunk, len(ids) - 1)])
            res = lm.model(input_ids=torch.tensor([part], dtype=torch.long, device=lm.device), past_key_values=cache,
                           use_cache=True)
            cache = res.past_key_values
            logp = torch.log_softmax(res.logits[0].float(), dim=-1)
            targets = list(ids[start + 1:start + 1 + len(part)])
            out.extend(_entries(lm, logp, targets, [k] * len(targets)))
    return out
