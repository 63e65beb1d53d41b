"""`alignlab serve`: an OpenAI-compatible chat-completions server over a local model.

Implements the subset of the OpenAI API that evaluation tools use (GET /v1/models, POST
/v1/chat/completions without streaming, GET /health) on the standard library's
ThreadingHTTPServer, so any outside tool (Inspect AI's openai-api provider, lm-eval's
local-chat-completions, curl) can evaluate the lab's models, steered or fine-tuned ones
included. Requests that arrive together are batched: one worker thread owns the model and
collects requests for a few milliseconds, then answers each group with the same settings
in one batched generate call. Binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_BODY = 8 * 1024 * 1024


@dataclasses.dataclass
class _Job:
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    seed: int
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class BatchingWorker(threading.Thread):
    """Owns the model; answers queued jobs in batches of up to `max_batch`."""

    def __init__(self, model: Any, max_batch: int = 16, wait_s: float = 0.01):
        super().__init__(daemon=True, name="alignlab-serve-worker")
        self.model, self.max_batch, self.wait_s = model, max_batch, wait_s
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.batches = 0

    def submit(self, job: _Job, timeout: float | None = None) -> Any:
        self.jobs.put(job)
        if not job.done.wait(timeout):
            raise TimeoutError("generation did not finish in time")
        if job.error is not None:
            raise job.error
        return job.result

    def stop(self) -> None:
        self.jobs.put(None)

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            batch = [job]
            deadline = time.monotonic() + self.wait_s
            while len(batch) < self.max_batch:
                try:
                    nxt = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    self.jobs.put(None)
                    break
                batch.append(nxt)
            groups: dict[tuple[int, float, int], list[_Job]] = {}
            for j in batch:
                groups.setdefault((j.max_tokens, j.temperature, j.seed), []).append(j)
            for (max_tokens, temperature, seed), jobs in groups.items():
                try:
                    msgs = [j.messages for j in jobs]
                    if hasattr(self.model, "generate"):
                        results = self.model.generate(msgs, max_new_tokens=max_tokens, temperature=temperature, seed=seed)
                    else:
                        results = self.model.chat(msgs, max_new_tokens=max_tokens, temperature=temperature, seed=seed)
                    for j, r in zip(jobs, results):
                        j.result = r
                except BaseException as exc:  # noqa: BLE001 - reported to each waiting request
                    for j in jobs:
                        j.error = exc
                finally:
                    self.batches += 1
                    for j in jobs:
                        j.done.set()


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, code: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.code = status, code


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(parts) == len(content):
            return "".join(parts)
    raise _BadRequest("message content must be a string or a list of text parts")


def parse_request(body: dict[str, Any]) -> _Job:
    """Validate a chat-completions request body (raises _BadRequest with an OpenAI-style message)."""
    if not isinstance(body, dict):
        raise _BadRequest("the request body must be a JSON object")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _BadRequest("'messages' must be a non-empty list")
    messages = []
    for m in msgs:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "developer"):
            raise _BadRequest("each message needs a role of system, developer, user or assistant")
        role = "system" if m["role"] == "developer" else m["role"]
        messages.append({"role": role, "content": _text(m.get("content", ""))})
    if body.get("stream"):
        raise _BadRequest("streaming is not supported by alignlab serve; send stream=false")
    if int(body.get("n", 1) or 1) != 1:
        raise _BadRequest("only n=1 is supported")
    try:
        max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 256)
        temperature = float(body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0)
        seed = int(body.get("seed") or 0)
    except (TypeError, ValueError):
        raise _BadRequest("max_tokens, temperature and seed must be numbers") from None
    if not 1 <= max_tokens <= 4096:
        raise _BadRequest("max_tokens must be between 1 and 4096")
    if not 0 <= temperature <= 2:
        raise _BadRequest("temperature must be between 0 and 2")
    return _Job(messages, max_tokens, temperature, seed)


def served_name(spec: str) -> str:
    """The model id to report for a model spec `BASE#SPEC...`: BASE's last path part, then each
    technique segment after a '+' instead of a '#'. Without '#', a client that passes the id back in
    `openai:<base_url>/<id>` does not apply the techniques a second time (the id is parsed as a spec)."""
    from alignlab.evals.backends import split_model_spec

    base, segments = split_model_spec(spec)
    return "+".join([Path(base.rstrip("/")).name or base] + [s.replace("#", "+") for s in segments])


def make_server(model: Any, host: str = "127.0.0.1", port: int = 0, model_name: str | None = None,
                max_batch: int = 16, wait_s: float = 0.01, request_timeout: float = 600.0) -> ThreadingHTTPServer:
    """A ready (not yet serving) server; `server.server_address` has the bound port.
    Call `serve_forever()` (in a thread, for tests) and `shutdown()` + `worker.stop()` to stop."""
    name = model_name or getattr(model, "name", "model").replace("#", "+")  # no '#': see served_name
    worker = BatchingWorker(model, max_batch=max_batch, wait_s=wait_s)
    worker.start()
    created = int(time.time())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "alignlab-serve"

        def log_message(self, format: str, *args: Any) -> None:  # quiet by default
            pass

        def _send(self, status: int, obj: dict[str, Any]) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, code: str = "invalid_request_error") -> None:
            self._send(status, {"error": {"message": message, "type": code, "code": code}})

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0].rstrip("/")
            if path in ("/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [
                    {"id": name, "object": "model", "created": created, "owned_by": "alignlab"}]})
            elif path == "/health":
                self._send(200, {"status": "ok", "model": name})
            else:
                self._error(404, f"no route {self.path}", "not_found")

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?")[0].rstrip("/")
            if path not in ("/v1/chat/completions", "/chat/completions"):
                self._error(404, f"no route {self.path}", "not_found")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    raise _BadRequest("request body too large", 413)
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise _BadRequest("the request body is not valid JSON") from None
                job = parse_request(body)
                result = worker.submit(job, timeout=request_timeout)
            except _BadRequest as exc:
                self._error(exc.status, str(exc), exc.code)
                return
            except Exception as exc:  # noqa: BLE001 - a failed generation is a 500, not a dead server
                self._error(500, f"generation failed: {type(exc).__name__}: {exc}", "server_error")
                return
            text = getattr(result, "text", result)
            usage = {"prompt_tokens": getattr(result, "prompt_tokens", 0),
                     "completion_tokens": getattr(result, "completion_tokens", 0)}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            self._send(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": name, "usage": usage,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": getattr(result, "finish_reason", "stop"), "logprobs": None}],
            })

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.worker = worker  # type: ignore[attr-defined]
    server.model_name = name  # type: ignore[attr-defined]
    return server


def stop(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()
    server.worker.stop()  # type: ignore[attr-defined]
