"""The FastAPI application of `alignlab serve`: routes, request checks, responses and streaming.

Routes (each also without the /v1 prefix): GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions,
POST /v1/completions, GET /health. Formats follow the OpenAI API reference
(https://platform.openai.com/docs/api-reference); streaming is server-sent events (the WHATWG HTML
standard's text/event-stream) of `chat.completion.chunk` / `text_completion` objects ending with
`data: [DONE]`. Every check that can refuse a request runs before any model work: the body size (413)
and read time (408), the schema (400, schemas.py), the model name (404), the context length (400,
code `context_length_exceeded`), the queue (429). Errors are OpenAI-style JSON
`{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import secrets
import time
import uuid
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from alignlab.evals.serve import responses
from alignlab.evals.serve.decoding import ServedLM, Seq
from alignlab.evals.serve.engine import Engine, Job, QueueFull, ShuttingDown, TimeLimit
from alignlab.evals.serve.schemas import MAX_CHOICES, ChatRequest, CompletionRequest, describe


@dataclasses.dataclass
class Settings:
    max_batch: int = 16
    """Rows (choices) decoded together."""
    max_queue: int = 64
    """Requests waiting for the model; one more is answered 429."""
    wait_s: float = 0.005
    """How long the engine waits for more requests to batch with the first."""
    request_timeout: float = 600.0
    """Seconds a request may take from its arrival to its last token (504 after)."""
    read_timeout: float = 30.0
    """Seconds a client may take to send its request (408 and the connection closed after)."""
    max_body: int = 8 * 1024 * 1024
    """Largest request body in bytes (413)."""
    default_max_tokens: int = 256
    """Tokens generated when a request gives no max_tokens (never past the context)."""
    context_length: int | None = None
    """Context length override (default: the model's)."""


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}

    def payload(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.payload(), status_code=self.status, headers=self.headers)


def _engine_error(exc: BaseException) -> ApiError:
    if isinstance(exc, TimeLimit):
        return ApiError(504, str(exc), "timeout", code="timeout")
    if isinstance(exc, ShuttingDown):
        return ApiError(503, str(exc), "server_error", code="shutting_down")
    return ApiError(500, f"generation failed: {type(exc).__name__}: {exc}", "server_error", code="server_error")


def make_app(model: Any, name: str, settings: Settings | None = None) -> FastAPI:
    """The ASGI app serving `model` (a local chat model) as `name`; its engine starts now and stops at shutdown."""
    settings = settings or Settings()
    lm = ServedLM(model, settings.context_length)
    engine = Engine(lm, settings.max_batch, settings.max_queue, settings.wait_s)
    created = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.stop()

    app = FastAPI(title="alignlab serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.engine, app.state.lm, app.state.model_name, app.state.settings = engine, lm, name, settings

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "method_not_allowed" if exc.status_code == 405 else None
        message = f"no route {request.method} {request.url.path}" if code else str(exc.detail)
        return ApiError(exc.status_code, message, "invalid_request_error", code=code,
                        headers=dict(exc.headers or {})).response()

    def model_card() -> dict[str, Any]:
        return {"id": name, "object": "model", "created": created, "owned_by": "alignlab",
                "context_length": lm.context}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": name, "waiting": len(engine.pending), "batches": engine.batches}

    @app.get("/v1/models")
    @app.get("/models", include_in_schema=False)
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    @app.get("/models/{model_id:path}", include_in_schema=False)
    async def one_model(model_id: str) -> dict[str, Any]:
        _check_model(model_id, name)
        return model_card()

    @app.post("/v1/chat/completions")
    @app.post("/chat/completions", include_in_schema=False)
    async def chat(request: Request) -> Any:
        req = _parse(ChatRequest, await _read_body(request, settings))
        _check_model(req.model, name)
        ids = await run_in_threadpool(lm.chat_ids, [m.as_dict() for m in req.messages])
        max_tokens = _budget(len(ids), req.limit, lm.context, settings.default_max_tokens)
        seed = req.seed if req.seed is not None else secrets.randbits(63)
        k = (req.top_logprobs or 0) if req.logprobs else None
        seqs = [Seq(ids, max_tokens, _temperature(req.temperature), req.top_p or 1.0, _seed(seed, j),
                    tuple(req.stop or ()), k, chat=True) for j in range(req.choices)]
        job = _submit(engine, lm, seqs, (), settings, bool(req.stream))
        meta = responses.Meta(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), name, seed, [len(ids)])
        headers = {"x-alignlab-seed": str(seed)}
        if req.stream:
            usage = bool(req.stream_options and req.stream_options.include_usage)
            return _stream(job, responses.chat_chunks(job, meta, usage), headers)
        await _wait(job, request)
        return JSONResponse(responses.chat(job, meta), headers=headers)

    @app.post("/v1/completions")
    @app.post("/completions", include_in_schema=False)
    async def completions(request: Request) -> Any:
        req = _parse(CompletionRequest, await _read_body(request, settings))
        _check_model(req.model, name)
        prompts = req.prompts()
        if len(prompts) * req.choices > MAX_CHOICES:
            raise ApiError(400, f"at most {MAX_CHOICES} completions per request (prompts x n)", param="n")
        if req.echo and req.stream:
            raise ApiError(400, "echo is not supported with stream=true", param="echo")
        id_lists = await run_in_threadpool(_prompt_ids, lm, prompts)
        seed = req.seed if req.seed is not None else secrets.randbits(63)
        seqs, scores = [], []
        for p, ids in enumerate(id_lists):
            max_tokens = _budget(len(ids), req.max_tokens, lm.context, settings.default_max_tokens, index=p)
            seqs += [Seq(ids, max_tokens, _temperature(req.temperature), req.top_p or 1.0,
                         _seed(seed, p * req.choices + j), tuple(req.stop or ()), req.logprobs)
                     for j in range(req.choices)]
            if req.echo and req.logprobs is not None:
                scores.append((ids, req.logprobs))
        job = _submit(engine, lm, seqs, scores, settings, bool(req.stream))
        meta = responses.Meta(f"cmpl-{uuid.uuid4().hex}", int(time.time()), name, seed, [len(i) for i in id_lists],
                              prompts=[p if isinstance(p, str) else lm.decode(p, skip_special=False) for p in prompts],
                              prompt_ids=id_lists, n=req.choices, echo=bool(req.echo))
        headers = {"x-alignlab-seed": str(seed)}
        if req.stream:
            usage = bool(req.stream_options and req.stream_options.include_usage)
            return _stream(job, responses.completion_chunks(job, meta, usage), headers)
        await _wait(job, request)
        return JSONResponse(responses.completion(job, meta, lm, req.logprobs), headers=headers)

    return app


def _temperature(value: float | None) -> float:
    return 1.0 if value is None else float(value)


def _seed(seed: int, index: int) -> int:
    """The seed of choice `index`: the request's seed for the first, distinct derived seeds for the others."""
    return (seed + index * 0x9E3779B97F4A7C15) % (1 << 64)


def _check_model(model: str, name: str) -> None:
    if model != name:
        raise ApiError(404, f"The model '{model}' does not exist: this server serves '{name}' (GET /v1/models)",
                       param="model", code="model_not_found")


def _parse(cls: Any, body: bytes) -> Any:
    try:
        return cls.model_validate_json(body)
    except ValidationError as exc:
        message, param = describe(exc)
        raise ApiError(400, message, param=param) from None


def _prompt_ids(lm: ServedLM, prompts: list[Any]) -> list[list[int]]:
    out = []
    for i, p in enumerate(prompts):
        ids = lm.encode(p) if isinstance(p, str) else list(p)
        bad = [t for t in ids if not 0 <= t < lm.vocab]
        if bad:
            raise ApiError(400, f"prompt {i}: token id {bad[0]} is outside the vocabulary (0..{lm.vocab - 1})",
                           param="prompt")
        if not ids:
            raise ApiError(400, f"prompt {i} encodes to no tokens", param="prompt")
        out.append(ids)
    return out


def _budget(prompt_tokens: int, asked: int | None, context: int, default: int, index: int | None = None) -> int:
    """max_tokens for a prompt, or a 400 when the prompt and the completion asked for exceed the context."""
    which = "the messages" if index is None else f"prompt {index}"
    if asked is None:
        if prompt_tokens >= context:
            raise ApiError(400, f"This model's maximum context length is {context} tokens. However, {which} "
                           f"resulted in {prompt_tokens} tokens.", param="messages" if index is None else "prompt",
                           code="context_length_exceeded")
        return min(default, context - prompt_tokens)
    if prompt_tokens + asked > context:
        raise ApiError(400, f"This model's maximum context length is {context} tokens. However, you requested "
                       f"{prompt_tokens + asked} tokens ({prompt_tokens} in {which}, {asked} in the completion). "
                       "Please reduce the length of the messages or completion.", param="max_tokens",
                       code="context_length_exceeded")
    return asked


async def _read_body(request: Request, settings: Settings) -> bytes:
    """The request body, refused past `max_body` bytes (413) or past `read_timeout` seconds (408, and the
    connection is closed: the rest of a stalled body will never be read)."""
    declared = request.headers.get("content-length")
    too_large = f"the request body is larger than {settings.max_body} bytes"
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "invalid Content-Length header")
        if int(declared) > settings.max_body:
            raise ApiError(413, too_large, code="request_too_large")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(settings.read_timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > settings.max_body:
                    raise ApiError(413, too_large, code="request_too_large", headers={"connection": "close"})
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {settings.read_timeout:g} s",
                       code="request_timeout", headers={"connection": "close"}) from None
    except ClientDisconnect:
        raise ApiError(400, "the client disconnected", code="client_disconnected") from None
    return b"".join(chunks)


def _submit(engine: Engine, lm: ServedLM, seqs: list[Seq], scores: Any, settings: Settings, stream: bool) -> Job:
    job = Job(lm, seqs, scores, settings.request_timeout, stream)
    try:
        engine.submit(job)
    except QueueFull as exc:
        raise ApiError(429, str(exc), "rate_limit_error", code="rate_limit_exceeded",
                       headers={"retry-after": "1"}) from None
    except ShuttingDown as exc:
        raise _engine_error(exc) from None
    return job


async def _wait(job: Job, request: Request) -> None:
    """Wait for `job`; cancel it when the client goes away or the time limit passes."""
    try:
        while True:
            left = job.deadline - time.monotonic()
            if left <= 0:
                raise TimeLimit(f"the request did not finish within the server's time limit of {job.timeout:g} s")
            done, _ = await asyncio.wait({job.future}, timeout=min(0.25, left))
            if done:
                job.future.result()
                return
            if await request.is_disconnected():
                raise ApiError(400, "the client disconnected", code="client_disconnected")
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - time limit 504, shutdown 503, a failed generation 500
        raise _engine_error(exc) from None
    finally:
        if not job.future.done():
            job.cancel()


def _stream(job: Job, chunks: AsyncIterator[dict[str, Any]], headers: dict[str, str]) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        try:
            async for chunk in chunks:
                yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
        except Exception as exc:  # noqa: BLE001 - the status line is sent: report the error in-band
            yield f"data: {json.dumps(_engine_error(exc).payload())}\n\n"
        finally:
            job.cancel()  # no-op once finished; stops the rows when the client went away
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", **headers})

