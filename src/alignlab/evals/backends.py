"""Model backends for the evals: a local Hugging Face model (the embedded one or any local
path / cached id) through alignlab.lm, or any OpenAI-compatible chat-completions endpoint
(vLLM, Ollama, llama.cpp server, `alignlab serve`).

The endpoint client sends its requests with the official `openai` package (its own retries off); around
it, what a long evaluation needs: timeouts, retries with exponential backoff on 429 / 5xx / timeouts /
connection errors / malformed replies, a concurrency limit (a thread pool; the client is thread-safe),
and a persistent SQLite response cache keyed by a hash of the request, written as each reply arrives,
so a rerun resumes where a failed or interrupted run stopped. The request format is OpenAI's chat
completions API (https://platform.openai.com/docs/api-reference/chat). Replies are read from the raw
response and checked here, so a malformed one is retried and reported in one line rather than
half-parsed.

Model specs (`alignlab eval --model`, `alignlab serve --model`, Inspect's `alignlab/<spec>`, the
behavioural-evals `models` field) are `BASE#SPEC#SPEC...`: a base model, then any registered
`chat-model` techniques in the technique spec syntax (core/technique.py), e.g.
`embedded#system-prompt(prompt=anti-sycophancy)`; `BASE#system=NAME|TEXT` is short for
`BASE#system-prompt(prompt=NAME|TEXT)`. `make_model` is the one place they are parsed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Sequence

from alignlab.core.errors import UserError

OPENAI_PREFIX = "openai:"


class EndpointError(UserError):
    """The endpoint failed in a way retries did not fix (shown as one line by the CLI)."""


def parse_spec(spec: str) -> tuple[str, str, str]:
    """('local', name, '') or ('openai', base_url, model) from a --model SPEC.

    `openai:<base_url>/<model>`: the base URL ends at '/v1' when there is one (so model
    names may contain '/'), else at the last '/'.
    """
    if not spec:
        raise UserError("empty --model; give 'embedded', a local model path, or openai:<base_url>/<model>")
    if not spec.startswith(OPENAI_PREFIX):
        return "local", spec, ""
    rest = spec[len(OPENAI_PREFIX):]
    if "/v1/" in rest:
        base, _, model = rest.rpartition("/v1/")
        base += "/v1"
    else:
        base, _, model = rest.rpartition("/")
    if not base.startswith(("http://", "https://")) or not model:
        raise UserError(f"bad endpoint spec {spec!r}: expected openai:http(s)://HOST:PORT/v1/MODEL")
    return "openai", base.rstrip("/"), model


def default_cache_path() -> Path:
    from alignlab.lm.models import cache_dir

    return cache_dir() / "endpoint-cache.sqlite"


class ResponseCache:
    """Finished replies by request hash, in SQLite; each put is committed at once."""

    def __init__(self, path: str | Path | None):
        self.path = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, request TEXT NOT NULL, "
                              "response TEXT NOT NULL, created REAL NOT NULL)")
            self.conn.commit()
        except sqlite3.DatabaseError as exc:
            raise UserError(f"cannot open the response cache {self.path}: {exc}") from None
        self._lock = threading.Lock()

    @staticmethod
    def key(request: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self.conn.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, key: str, request: dict[str, Any], response: str) -> None:
        with self._lock:
            self.conn.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                              (key, json.dumps(request, sort_keys=True), response, time.time()))
            self.conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return self.conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self.conn.close()


class _Retryable(Exception):
    pass


class OpenAIChatModel:
    """A chat model behind an OpenAI-compatible /v1/chat/completions endpoint."""

    supports_logprobs = False  # chat completions cannot score a given continuation

    def __init__(self, base_url: str, model: str, cache: str | Path | None | bool = True, timeout: float = 60.0,
                 max_retries: int = 4, backoff: float = 0.5, concurrency: int = 4, api_key: str | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise UserError("endpoint: concurrency >= 1, retries >= 0 and timeout > 0 are required")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"{OPENAI_PREFIX}{self.base_url}/{model}"
        path = default_cache_path() if cache is True else (None if cache is False else cache)
        self.cache = ResponseCache(path)
        self.timeout, self.max_retries, self.backoff, self.concurrency = timeout, max_retries, backoff, concurrency
        self.api_key = api_key if api_key is not None else os.environ.get("ALIGNLAB_ENDPOINT_KEY")
        self.sleep = sleep
        self.stats = {"requests": 0, "cache_hits": 0, "retries": 0}
        self._stats_lock = threading.Lock()
        self._client: Any = None
        self._client_lock = threading.Lock()

    def client(self) -> Any:
        """The `openai.OpenAI` client (made on first use: importing openai takes a second). Its own retries
        are off: ours count them and back off with `sleep`. Without a key it sends a placeholder, never the
        environment's OPENAI_API_KEY (this endpoint may be anyone's)."""
        with self._client_lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key or "none",
                                             timeout=self.timeout, max_retries=0)
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _payload(self, messages: Sequence[dict[str, str]], max_new_tokens: int, temperature: float,
                 seed: int) -> dict[str, Any]:
        return {"model": self.model, "messages": [dict(m) for m in messages], "max_tokens": int(max_new_tokens),
                "temperature": float(temperature), "seed": int(seed), "n": 1}

    def _post(self, payload: dict[str, Any]) -> str:
        import openai

        url = f"{self.base_url}/chat/completions"
        client = self.client()
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._count("retries")
                self.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                self._count("requests")
                raw = client.chat.completions.with_raw_response.create(**payload)
                return _content(raw.content)
            except openai.APIStatusError as exc:
                detail = exc.response.text[:200].strip()
                if exc.status_code == 429 or exc.status_code >= 500:
                    last = f"HTTP {exc.status_code} {detail}".strip()
                    continue
                raise EndpointError(f"{url} refused the request: HTTP {exc.status_code} {detail}") from None
            except _Retryable as exc:
                last = str(exc)
            except openai.APITimeoutError:
                last = f"timed out after {self.timeout:g} s"
            except openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                last = f"{type(cause).__name__}: {cause}"
        raise EndpointError(f"{url}: no valid reply after {self.max_retries + 1} attempts (last: {last})")

    def chat(self, messages_batch: Sequence[Sequence[dict[str, str]]], max_new_tokens: int = 64,
             temperature: float = 0.0, seed: int = 0) -> list[str]:
        payloads = [self._payload(m, max_new_tokens, temperature, seed) for m in messages_batch]
        keys = [ResponseCache.key({"base_url": self.base_url, **p}) for p in payloads]
        out: list[str | None] = [self.cache.get(k) for k in keys]
        self.stats["cache_hits"] += sum(o is not None for o in out)
        todo = [i for i, o in enumerate(out) if o is None]
        error: EndpointError | None = None
        if todo:
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                pending: dict[Future, int] = {}
                queue = list(todo)
                while queue or pending:
                    while queue and len(pending) < self.concurrency and error is None:
                        i = queue.pop(0)
                        pending[pool.submit(self._post, payloads[i])] = i
                    if not pending:
                        break
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        i = pending.pop(fut)
                        try:
                            text = fut.result()
                        except EndpointError as exc:
                            error = error or exc
                            queue.clear()  # stop sending; let the requests in flight finish and be cached
                            continue
                        self.cache.put(keys[i], payloads[i], text)
                        out[i] = text
        if error is not None:
            done_n = sum(o is not None for o in out)
            raise EndpointError(f"{error} ({done_n}/{len(out)} replies of this batch are cached; rerun to resume)")
        return [o or "" for o in out]

    def logprobs(self, prompts: Sequence[Any], continuations: Sequence[str]) -> list[float]:
        raise NotImplementedError("an OpenAI-compatible chat endpoint cannot score given continuations")


def _content(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _Retryable(f"malformed JSON in the reply: {body[:80]!r}") from None
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise _Retryable(f"reply without choices[0].message.content: {str(data)[:80]}") from None
    if content is None:
        return ""
    if not isinstance(content, str):
        raise _Retryable(f"message content is not text: {str(content)[:80]}")
    return content


SHORTHAND = "system="
"""A model-spec segment `system=NAME|TEXT` is short for `system-prompt(prompt=NAME|TEXT)` (evals/prompting.py)."""


def split_model_spec(spec: str) -> tuple[str, list[str]]:
    """(BASE, [technique segments]) of a model spec `BASE#SPEC#SPEC...`.

    BASE ends at the first '#'. Segments are separated by '#' outside parentheses (so an argument
    may contain '#'); a segment that starts with `system=` is the shorthand and runs to the end of
    the spec, since its text may contain anything.
    """
    base, sep, rest = spec.partition("#")
    if not sep:
        return spec, []
    segments: list[str] = []
    while True:
        if rest.lstrip().startswith(SHORTHAND):
            segments.append(rest.lstrip())
            return base, segments
        depth, cut = 0, -1
        for i, ch in enumerate(rest):
            depth += (ch == "(") - (ch == ")")
            if ch == "#" and depth == 0:
                cut = i
                break
        if cut < 0:
            segments.append(rest.strip())
            return base, segments
        segments.append(rest[:cut].strip())
        rest = rest[cut + 1:]


def chat_model_technique_names() -> list[str]:
    """The registered techniques a model spec may name (slot `chat-model`)."""
    from alignlab.core import registry

    return [n for n in registry.names("technique") if registry.get("technique", n).slot == "chat-model"]


def model_spec_techniques(spec: str) -> tuple[str, list[tuple[Any, str]]]:
    """(BASE, [(technique, segment as written)]) of a model spec, each segment checked to name a
    registered `chat-model` technique; raises ConfigError (one line, naming what is valid)."""
    from alignlab.core import registry
    from alignlab.core.errors import ConfigError, RegistryError
    from alignlab.core.technique import make_technique, parse_spec as parse_technique, technique_class

    def valid() -> str:
        return (f"valid: {', '.join(chat_model_technique_names()) or '(none registered)'} as NAME or "
                f"NAME(key=value, ...), or the shorthand {SHORTHAND}NAME|TEXT as the last segment")

    base, segments = split_model_spec(spec)
    out = []
    for seg in segments:
        if not seg:
            raise ConfigError(f"model spec {spec!r}: empty technique after '#'; {valid()}")
        if seg.startswith(SHORTHAND):
            cls = technique_class("system-prompt")
            try:
                out.append((cls(cls.Config(prompt=seg[len(SHORTHAND):])), seg))
            except ConfigError as exc:
                raise ConfigError(f"model spec {spec!r}: {exc}") from None
            continue
        try:
            name, _ = parse_technique(seg)
            cls = registry.get("technique", name)
        except (ConfigError, RegistryError):
            raise ConfigError(f"model spec {spec!r}: {seg!r} is not a registered chat-model technique; "
                              f"{valid()}") from None
        if cls.slot != "chat-model":
            raise ConfigError(f"model spec {spec!r}: technique {cls.registered_name} acts on the {cls.slot!r} slot, "
                              f"not on a chat model; {valid()}")
        try:
            out.append((make_technique(seg), seg))
        except ConfigError as exc:
            raise ConfigError(f"model spec {spec!r}: {exc}") from None
    return base, out


_LOCAL: dict[tuple[str, str, int], Any] = {}


def make_model(spec: str, *, dtype: str = "float32", threads: int = 1, batch_size: int = 16,
               cache: str | Path | None | bool = True, timeout: float = 60.0, retries: int = 4,
               concurrency: int = 4, backoff: float = 0.5) -> Any:
    """A ChatModel from a --model SPEC `BASE#SPEC#SPEC...`: BASE is `embedded`, a local model
    folder or cached id, or openai:<base_url>/<model> (local models are loaded once per process);
    each SPEC is a registered `chat-model` technique (`system-prompt(prompt=anti-sycophancy)`),
    applied in order, innermost first; `BASE#system=NAME|TEXT` is short for
    `BASE#system-prompt(prompt=NAME|TEXT)` and must come last. Each wrapper's name ends in `#SPEC`
    as written. Techniques are checked before any model is loaded."""
    base_spec, techniques = model_spec_techniques(spec)
    model = _base_model(base_spec, dtype=dtype, threads=threads, batch_size=batch_size, cache=cache,
                        timeout=timeout, retries=retries, concurrency=concurrency, backoff=backoff)
    for tech, segment in techniques:
        model = tech.apply(model, label=segment)
    return model


def _base_model(spec: str, *, dtype: str, threads: int, batch_size: int, cache: str | Path | None | bool,
                timeout: float, retries: int, concurrency: int, backoff: float) -> Any:
    kind, a, b = parse_spec(spec)
    if kind == "openai":
        return OpenAIChatModel(a, b, cache=cache, timeout=timeout, max_retries=retries, backoff=backoff,
                               concurrency=concurrency)
    if a != "embedded" and not Path(a).exists() and "/" not in a:
        raise UserError(f"unknown model {spec!r}: give 'embedded', a local model folder, a cached Hugging Face id "
                        "(org/name), or openai:<base_url>/<model>")
    key = (a, dtype, threads)
    if key not in _LOCAL:
        from alignlab.lm.chat import LocalChatModel
        from alignlab.lm.models import ModelSpec

        _LOCAL[key] = LocalChatModel.load(ModelSpec(a, dtype=dtype, threads=threads), batch_size=batch_size)
    model = _LOCAL[key]
    model.batch_size = batch_size
    return model
