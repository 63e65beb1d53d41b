"""The lab's models as an Inspect AI model provider: `--model alignlab/embedded`, `alignlab/<folder>`.

A custom `@modelapi` provider (Inspect AI, UK AISI: https://inspect.aisi.org.uk/extensions.html#model-apis)
over alignlab's own backends (evals/backends.py): the embedded SmolLM2, any local Hugging Face
folder or cached id (through `lm.models.load`, offline), or `alignlab/openai:<base_url>/<model>`.
Greedy and seeded by default (temperature 0, seed 0 unless the request says otherwise).
The spec after `alignlab/` is any model spec `make_model` takes, chat-model techniques included:
`--model 'alignlab/embedded#system-prompt(prompt=anti-sycophancy)'` or `alignlab/embedded#system=NAME|TEXT`.
Inspect splits a `--model` string (and `eval(model=...)`) on commas, so a spec with a comma goes
through `--model-spec '{model: "alignlab/embedded#system=Be brief, and honest."}'` or `get_model`.

Inspect calls `generate` once per conversation, concurrently across samples. Local models are
fastest in batches, so concurrent requests are gathered into one batched `chat` call: the first
request that finds the model idle becomes the leader, waits a few milliseconds while peers
arrive, runs everything queued with the same generation settings in a worker thread (the event
loop keeps running), and hands leadership to a waiting request when it is done. Only the leader
touches the model, so calls into it never overlap. The same queue serves continuation
log-probabilities (`continuation_logprobs`), which Inspect's API has no call for; alignlab's
solver uses them where this provider is the model (feedback ratings, calibration choices).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Sequence

import anyio
from inspect_ai.model import (ChatMessage, GenerateConfig, ModelAPI, ModelOutput, ModelUsage, modelapi)
from inspect_ai.tool import ToolChoice, ToolInfo

Message = dict[str, str]


@dataclasses.dataclass(eq=False)
class _Request:
    key: tuple[Any, ...]
    """('chat', max_new_tokens, temperature, seed) or ('logprobs',): requests with equal keys share a call."""
    payload: list[Any]
    """Conversations (chat), or (conversation, continuation) pairs (logprobs)."""
    wake: anyio.Event = dataclasses.field(default_factory=anyio.Event)
    result: list[Any] | None = None
    error: BaseException | None = None
    done: bool = False


class _Batcher:
    """Serializes calls into one chat model and batches concurrent requests (see the module docstring)."""

    def __init__(self, model: Any, max_batch: int, linger: float = 0.02, max_linger: float = 0.25):
        self.model = model
        self.max_batch = max_batch
        self.linger, self.max_linger = linger, max_linger
        self.pending: list[_Request] = []
        self.busy = False
        self.calls = 0
        """Batched calls made into the model (for tests and reports)."""

    async def submit(self, key: tuple[Any, ...], payload: list[Any]) -> list[Any]:
        req = _Request(key, payload)
        self.pending.append(req)
        try:
            while not req.done:
                if self.busy:
                    await req.wake.wait()  # set when served, or when promoted to leader
                    req.wake = anyio.Event()
                    continue
                self.busy = True
                try:
                    await self._gather_peers()
                    await self._run(self._take())
                finally:
                    self.busy = False
        finally:
            if not req.done and req in self.pending:  # cancelled while queued
                self.pending.remove(req)
            if not self.busy and self.pending:  # no leader: promote the oldest waiting request
                self.pending[0].wake.set()
        if req.error is not None:
            raise req.error
        assert req.result is not None
        return req.result

    async def _gather_peers(self) -> None:
        """Wait while requests keep arriving (they do, right after a batch is answered), briefly."""
        started = time.monotonic()
        seen = -1
        while len(self.pending) != seen and len(self.pending) < self.max_batch \
                and time.monotonic() - started < self.max_linger:
            seen = len(self.pending)
            await anyio.sleep(self.linger)

    def _take(self) -> list[_Request]:
        key = self.pending[0].key
        batch, rest, size = [], [], 0
        for r in self.pending:
            if r.key == key and (size < self.max_batch or not batch):
                batch.append(r)
                size += len(r.payload)
            else:
                rest.append(r)
        self.pending = rest
        return batch

    async def _run(self, batch: list[_Request]) -> None:
        flat = [p for r in batch for p in r.payload]
        key = batch[0].key
        try:
            with anyio.CancelScope(shield=True):  # a cancelled leader still answers the others in its batch
                if key[0] == "chat":
                    _, max_new_tokens, temperature, seed = key
                    out = await anyio.to_thread.run_sync(self._chat, flat, max_new_tokens, temperature, seed)
                else:
                    out = await anyio.to_thread.run_sync(self.model.logprobs, [c for c, _ in flat],
                                                         [t for _, t in flat])
            self.calls += 1
            if len(out) != len(flat):
                raise RuntimeError(f"the model answered {len(out)} of {len(flat)} requests")
            start = 0
            for r in batch:
                r.result = list(out[start:start + len(r.payload)])
                start += len(r.payload)
        except Exception as exc:  # handed to every request of the batch, raised there
            for r in batch:
                r.error = exc
        finally:
            for r in batch:
                r.done = True
                r.wake.set()

    def _chat(self, convs: list[list[Message]], max_new_tokens: int, temperature: float, seed: int) -> list[Any]:
        """(text, prompt tokens, completion tokens, finish reason) per conversation."""
        if hasattr(self.model, "generate"):  # LocalChatModel: with token counts
            gens = self.model.generate(convs, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
            return [(g.text, g.prompt_tokens, g.completion_tokens, g.finish_reason) for g in gens]
        texts = self.model.chat(convs, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        return [(t, 0, 0, "stop") for t in texts]


def _message(m: ChatMessage) -> Message:
    if m.role == "tool" or getattr(m, "tool_calls", None):
        raise ValueError("the alignlab provider serves plain chat; it does not support tool calls")
    return {"role": m.role, "content": m.text}


class AlignlabModelAPI(ModelAPI):
    """alignlab's local models (and its endpoint client) behind Inspect's model interface.

    Model args (`-M key=value`): batch_size (16, the local generation batch), dtype (float32 or
    bfloat16), max_batch (requests gathered into one call and Inspect's connection limit, 64).
    """

    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig | None = None, batch_size: int = 16, dtype: str = "float32",
                 max_batch: int = 64, **model_args: Any) -> None:
        config = config if config is not None else GenerateConfig()
        if config.max_connections is None and config.adaptive_connections is None:
            # Inspect's adaptive concurrency starts at 20 connections and grows on success: a
            # local model answers concurrent requests in one batch, so that would split each
            # turn into waves. A static limit of one batch (get_model hands this same config
            # object to the Model; --max-connections still overrides it).
            config.max_connections = int(max_batch)
        super().__init__(model_name, base_url, api_key, [], config)
        from alignlab.evals.backends import make_model

        self.chat_model = make_model(model_name, dtype=dtype, batch_size=int(batch_size))
        self.batcher = _Batcher(self.chat_model, max_batch=int(max_batch))

    @property
    def supports_continuation_logprobs(self) -> bool:
        return bool(getattr(self.chat_model, "supports_logprobs", False))

    async def generate(self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice,
                       config: GenerateConfig) -> ModelOutput:
        if tools:
            raise ValueError("the alignlab provider does not support tools")
        conv = [_message(m) for m in input]
        temperature = float(config.temperature or 0.0)
        max_new = int(config.max_tokens or self.max_tokens() or 256)
        seed = int(config.seed or 0) if temperature > 0 else 0  # greedy ignores the seed: batch across turns
        started = time.monotonic()
        [(text, n_in, n_out, finish)] = await self.batcher.submit(("chat", max_new, temperature, seed), [conv])
        stop = "max_tokens" if finish == "length" else "stop"
        output = ModelOutput.from_content(self.model_name, text, stop_reason=stop)
        output.usage = ModelUsage(input_tokens=n_in, output_tokens=n_out, total_tokens=n_in + n_out)
        output.time = time.monotonic() - started
        return output

    async def continuation_logprobs(self, prompts: Sequence[Sequence[Message]],
                                    continuations: Sequence[str]) -> list[float]:
        """log P(continuation | conversation) for each pair (the ChatModel.logprobs contract)."""
        if not self.supports_continuation_logprobs:
            raise NotImplementedError(f"{self.model_name} cannot score given continuations")
        pairs = [([dict(m) for m in p], str(c)) for p, c in zip(prompts, continuations)]
        return [float(x) for x in await self.batcher.submit(("logprobs",), pairs)]

    def max_tokens(self) -> int | None:
        return 256

    def max_connections(self) -> int:
        return int(self.batcher.max_batch)


@modelapi(name="alignlab")
def alignlab() -> type[ModelAPI]:
    return AlignlabModelAPI
