"""Response bodies of `alignlab serve` in the OpenAI formats (https://platform.openai.com/docs/api-reference):
chat completions with `logprobs.content` entries, legacy completions with `tokens` / `token_logprobs` /
`top_logprobs` / `text_offset` (what lm-evaluation-harness's local-completions model reads), and the
chunks of their streams.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any, AsyncIterator

from alignlab.evals.serve.decoding import Delta, ServedLM, TokenLogprob
from alignlab.evals.serve.engine import _END, Job, TimeLimit


@dataclasses.dataclass
class Meta:
    id: str
    created: int
    model: str
    seed: int
    prompt_tokens: list[int]
    prompts: list[str] = dataclasses.field(default_factory=list)
    prompt_ids: list[list[int]] = dataclasses.field(default_factory=list)
    n: int = 1
    echo: bool = False


def _usage(job: Job, meta: Meta) -> dict[str, int]:
    prompt, completion = sum(meta.prompt_tokens), sum(r.generated for r in job.rows)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chat_logprobs(entries: list[TokenLogprob]) -> dict[str, Any]:
    return {"content": [{"token": e.token, "logprob": e.logprob, "bytes": list(e.token.encode()),
                         "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in e.top]}
                        for e in entries], "refusal": None}


def _top(e: TokenLogprob) -> dict[str, float]:
    top = dict(e.top)
    top.setdefault(e.token, e.logprob)  # the chosen token is always there, as in the OpenAI API
    return top


def _legacy_logprobs(entries: list[TokenLogprob | None], tokens: list[str], start: int) -> dict[str, Any]:
    offsets, at = [], start
    for t in tokens:
        offsets.append(at)
        at += len(t)
    return {"tokens": tokens, "token_logprobs": [e.logprob if e else None for e in entries],
            "top_logprobs": [_top(e) if e else None for e in entries], "text_offset": offsets}


def chat(job: Job, meta: Meta) -> dict[str, Any]:
    choices = [{"index": i, "message": {"role": "assistant", "content": r.text, "refusal": None},
                "logprobs": _chat_logprobs(r.entries) if r.seq.logprobs is not None else None,
                "finish_reason": r.finish_reason} for i, r in enumerate(job.rows)]
    return {"id": meta.id, "object": "chat.completion", "created": meta.created, "model": meta.model,
            "choices": choices, "usage": _usage(job, meta), "system_fingerprint": None, "seed": meta.seed}


def completion(job: Job, meta: Meta, lm: ServedLM, k: int | None) -> dict[str, Any]:
    choices = []
    for i, r in enumerate(job.rows):
        p = i // meta.n
        prefix = meta.prompts[p] if meta.echo else ""
        logprobs = None
        if k is not None:
            entries: list[TokenLogprob | None] = list(r.entries)
            tokens = [e.token for e in r.entries]
            if meta.echo:
                entries = list(job.scores[p]) + entries  # one scored prompt per prompt with echo and logprobs
                tokens = [lm.token_text(t) for t in meta.prompt_ids[p]] + tokens
            logprobs = _legacy_logprobs(entries, tokens, 0 if meta.echo else len(meta.prompts[p]))
        choices.append({"index": i, "text": prefix + r.text, "logprobs": logprobs, "finish_reason": r.finish_reason})
    return {"id": meta.id, "object": "text_completion", "created": meta.created, "model": meta.model,
            "choices": choices, "usage": _usage(job, meta), "system_fingerprint": None, "seed": meta.seed}


async def _pieces(job: Job) -> AsyncIterator[tuple[int, Delta]]:
    assert job.events is not None
    while True:
        left = job.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            item = await asyncio.wait_for(job.events.get(), left)
        except TimeoutError:
            raise TimeLimit(f"the request did not finish within the server's time limit of {job.timeout:g} s") from None
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


async def chat_chunks(job: Job, meta: Meta, usage: bool) -> AsyncIterator[dict[str, Any]]:
    base = {"id": meta.id, "object": "chat.completion.chunk", "created": meta.created, "model": meta.model,
            "system_fingerprint": None}
    yield {**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                "finish_reason": None} for i in range(len(job.rows))]}
    async for i, d in _pieces(job):
        lp = _chat_logprobs(d.logprobs) if job.rows[i].seq.logprobs is not None else None
        delta = {"content": d.text} if d.text or d.finish_reason is None else {}
        yield {**base, "choices": [{"index": i, "delta": delta, "logprobs": lp, "finish_reason": d.finish_reason}]}
    if usage:
        yield {**base, "choices": [], "usage": _usage(job, meta)}


async def completion_chunks(job: Job, meta: Meta, usage: bool) -> AsyncIterator[dict[str, Any]]:
    base = {"id": meta.id, "object": "text_completion", "created": meta.created, "model": meta.model,
            "system_fingerprint": None}
    offsets = [len(meta.prompts[i // meta.n]) for i in range(len(job.rows))]
    async for i, d in _pieces(job):
        lp = None
        if job.rows[i].seq.logprobs is not None:
            lp = _legacy_logprobs(list(d.logprobs), [e.token for e in d.logprobs], offsets[i])
            offsets[i] += sum(len(e.token) for e in d.logprobs)
        yield {**base, "choices": [{"index": i, "text": d.text, "logprobs": lp, "finish_reason": d.finish_reason}]}
    if usage:
        yield {**base, "choices": [], "usage": _usage(job, meta)}
