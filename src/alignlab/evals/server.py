"""`alignlab serve`: an OpenAI-compatible server over a local model (FastAPI on uvicorn).

Serves the parts of the OpenAI API that evaluation tools use (https://platform.openai.com/docs/api-reference):
POST /v1/chat/completions and /v1/completions (stop sequences, temperature, top_p, seed, n, streaming,
logprobs / top_logprobs, and on completions echo with prompt log-probabilities: lm-evaluation-harness's
local-completions model scores with echo=true and max_tokens 0 or 1), GET /v1/models and /health. So any
outside tool (the official `openai` client, Inspect AI's openai-api provider, lm-evaluation-harness, curl)
can evaluate the lab's models, steered or fine-tuned ones and model specs with techniques included.

The code is in `evals/serve/` (schemas.py: strict request schemas; decoding.py: batched decoding with
per-row settings; engine.py: the worker thread, its bounded queue and micro-batching; responses.py: the
response formats; app.py: routes and request checks; http.py: uvicorn). That folder has no
`__init__.py`, so the registry walk over `alignlab.evals` skips it: FastAPI is imported only by the
server. Binds to 127.0.0.1 unless told otherwise; there is no authentication.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def served_name(spec: str) -> str:
    """The model id to report for a model spec `BASE#SPEC...`: BASE's last path part, then each
    technique segment after a '+' instead of a '#'. Without '#', a client that passes the id back in
    `openai:<base_url>/<id>` does not apply the techniques a second time (the id is parsed as a spec)."""
    from alignlab.evals.backends import split_model_spec

    base, segments = split_model_spec(spec)
    return "+".join([Path(base.rstrip("/")).name or base] + [s.replace("#", "+") for s in segments])


def _settings(options: dict[str, Any]) -> Any:
    from alignlab.evals.serve.app import Settings

    return Settings(**options)


def make_app(model: Any, model_name: str | None = None, **settings: Any) -> Any:
    """The FastAPI app serving `model` (a local chat model) as `model_name` (default: `served_name` of the
    model's name). `settings` are the fields of `evals.serve.app.Settings` (max_batch, max_queue, ...)."""
    from alignlab.evals.serve.app import make_app as _make_app

    return _make_app(model, model_name or served_name(getattr(model, "name", "model")), _settings(settings))


def start(model: Any, host: str = "127.0.0.1", port: int = 0, model_name: str | None = None,
          **settings: Any) -> Any:
    """Serve `model` from a background thread; returns a handle with `url`, `app` and `stop()`."""
    from alignlab.evals.serve.http import Running, bind

    app = make_app(model, model_name, **settings)
    return Running(app, bind(host, port), app.state.settings.read_timeout).start()


def serve(model: Any, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None,
          on_ready: Callable[[str, int], None] | None = None, **settings: Any) -> Any:
    """Serve `model` in this thread until SIGINT or SIGTERM; returns the app (its engine has the counts).
    The socket is bound (OSError if it cannot be) before `on_ready(host, port)` is called."""
    from alignlab.evals.serve.http import bind, make_server

    app = make_app(model, model_name, **settings)
    try:
        sock = bind(host, port)
    except OSError:
        app.state.engine.stop()
        raise
    if on_ready is not None:
        on_ready(*sock.getsockname()[:2])
    try:
        make_server(app, app.state.settings.read_timeout).run(sockets=[sock])
    finally:
        app.state.engine.stop()
        sock.close()
    return app
