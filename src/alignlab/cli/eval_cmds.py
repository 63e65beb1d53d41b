"""CLI commands for behavioural evals: `alignlab eval NAME --model SPEC` and `alignlab serve`.

Added to the main group through cli/main.py's EXTRA_COMMANDS, whose `main` gives every
command the same one-line error handling.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table as RichTable

from alignlab.core import registry
from alignlab.core.config import apply_overrides
from alignlab.core.errors import UserError
from alignlab.evals.datasets import FORMATS

console = Console()
err_console = Console(stderr=True)


def _runs_dir(ctx: click.Context) -> Path:
    obj = ctx.find_root().obj or {}
    return Path(obj.get("runs_dir") or os.environ.get("ALIGNLAB_RUNS", "runs"))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[-60:] or "model"


@click.command("eval")
@click.argument("name")
@click.option("--model", "model_spec", default="embedded", show_default=True,
              help="embedded, a local model folder or cached Hugging Face id, or openai:<base_url>/<model>; then any "
                   "chat-model techniques: BASE#system-prompt(prompt=anti-sycophancy), or BASE#system=NAME|TEXT.")
@click.option("--limit", type=int, default=None, help="Evaluate at most N items (stratified by category).")
@click.option("--seed", type=int, default=0, show_default=True, help="Item sample and sampling seed.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override an eval config key; repeatable.")
@click.option("--data", "data_file", default=None, metavar="FILE",
              help="Your own items instead of the shipped set: JSONL or CSV in the eval's schema, or a file of "
                   "Sharma et al.'s sycophancy-eval (docs/evals.md, 'Bring your own data'). Results are labelled "
                   "with the file's name and sha256.")
@click.option("--data-format", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Format of --data (auto: from the extension and the first line).")
@click.option("--out", default=None, help="Folder for result.json and transcripts.jsonl "
              "(default RUNS_DIR/evals/NAME/MODEL-sSEED, then -DATA-SHA256 with --data).")
@click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16"]), default="auto", show_default=True,
              help="Local models: weights dtype (auto: bfloat16 where the CPU or GPU runs it natively, else float32).")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Local models: generation batch.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Endpoint: seconds per request.")
@click.option("--retries", type=int, default=4, show_default=True, help="Endpoint: retries per request.")
@click.option("--concurrency", type=int, default=4, show_default=True, help="Endpoint: requests in flight.")
@click.option("--cache", "cache_path", default=None,
              help="Endpoint: SQLite response cache (default RUNS_DIR/evals/endpoint-cache.sqlite).")
@click.pass_context
def eval_cmd(ctx: click.Context, name: str, model_spec: str, limit: int | None, seed: int, sets: tuple[str, ...],
             data_file: str | None, data_format: str, out: str | None, dtype: str, batch_size: int, timeout: float,
             retries: int, concurrency: int, cache_path: str | None) -> None:
    """Run the behavioural eval NAME on a model; print every metric with its 95% bootstrap CI and n."""
    from alignlab.evals.backends import make_model, model_spec_techniques, parse_spec
    from alignlab.evals.datasets import load_for_eval
    from alignlab.lm.models import resolve_dtype

    full = registry.resolve("eval", name)
    cls = registry.get("eval", full)
    config = apply_overrides(cls.Config(), list(sets), owner=full)
    if data_file is None and data_format != "auto":
        raise UserError("--data-format applies to --data; give the file with --data FILE")
    data = load_for_eval(cls, data_file, data_format) if data_file is not None else None
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1 (got {limit})")
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1 (got {batch_size})")
    kind, _, _ = parse_spec(model_spec_techniques(model_spec)[0])  # checks the spec's techniques too
    runs = _runs_dir(ctx)
    cache = cache_path or str(runs / "evals" / "endpoint-cache.sqlite")
    used_dtype = resolve_dtype(dtype) if kind == "local" else "endpoint"  # what the weights are loaded as
    with console.status(f"loading {model_spec}"):
        model = make_model(model_spec, dtype=resolve_dtype(dtype), batch_size=batch_size, cache=cache,
                           timeout=timeout, retries=retries, concurrency=concurrency)
    with console.status(f"running {full} on {model_spec}"):
        result = cls(config, data=data).run(model, limit=limit, seed=seed)
    suffix = f"-{_slug(data.name)}-{data.short_hash}" if data is not None else ""
    folder = Path(out) if out else runs / "evals" / full / f"{_slug(model_spec)}-s{seed}{suffix}"
    folder.mkdir(parents=True, exist_ok=True)
    saved = {**result.to_dict(), "dtype": used_dtype}
    (folder / "result.json").write_text(json.dumps(saved, indent=1, default=str), encoding="utf-8")
    with open(folder / "transcripts.jsonl", "w", encoding="utf-8") as fh:
        for t in result.transcripts:
            fh.write(json.dumps(t, ensure_ascii=False) + "\n")
    on_data = f" on data {data.label}" if data is not None else ""
    weights = f", {used_dtype}" if kind == "local" else ""
    table = RichTable(title=f"{full} on {model_spec}{on_data} ({len(result.items)} items{weights}, "
                            f"{result.seconds:.1f} s)")
    for col in ("metric", "value", "95% CI", "n"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for key, est in result.metrics.items():
        style = "bold" if key in ("specified", "intended", "gap") else None
        value = "n/a" if est.n == 0 else f"{est.value:.3f}"
        ci = "" if est.n == 0 else f"[{est.lo:.3f}, {est.hi:.3f}]"
        table.add_row(key, value, ci, str(est.n), style=style)
    console.print(table)
    if kind == "openai":
        console.print(f"[dim]endpoint: {model.stats['requests']} requests, {model.stats['cache_hits']} cached replies "
                      f"reused, {model.stats['retries']} retries; cache {cache}[/dim]")
    console.print(f"[dim]{cls.specified_label} = specified; {cls.intended_label} = intended[/dim]")
    if data is not None:
        console.print(f"Data: [bold]{data.label}[/bold] (file {Path(data.file).name}, sha256 {data.short_hash}, "
                      f"{data.format}, {len(data.items)} items), not the shipped set", highlight=False)
    console.print(f"Results: [bold]{folder / 'result.json'}[/bold]; transcripts: {folder / 'transcripts.jsonl'}")


@click.command("serve")
@click.option("--model", "model_spec", default="embedded", show_default=True,
              help="embedded, or a local model folder / cached Hugging Face id; then any chat-model techniques: "
                   "BASE#system-prompt(prompt=anti-sycophancy), or BASE#system=NAME|TEXT.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (loopback by default).")
@click.option("--port", type=int, default=8000, show_default=True, help="Port (0 picks a free one).")
@click.option("--name", "served_name", default=None,
              help="Model id to report (default: the base's last part, then each technique with '+' for '#').")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True, help="Sequences decoded together.")
@click.option("--threads", type=int, default=1, show_default=True, help="CPU threads for the model.")
@click.option("--max-queue", type=int, default=64, show_default=True,
              help="Requests waiting for the model; more are answered 429.")
@click.option("--request-timeout", type=float, default=600.0, show_default=True,
              help="Seconds a request may take, queueing included (504 after).")
@click.option("--max-body", type=int, default=8 * 1024 * 1024, show_default=True,
              help="Largest request body in bytes (413 above).")
@click.option("--default-max-tokens", type=int, default=256, show_default=True,
              help="Tokens generated when a request gives no max_tokens (never past the context).")
def serve(model_spec: str, host: str, port: int, served_name: str | None, dtype: str, batch_size: int, threads: int,
          max_queue: int, request_timeout: float, max_body: int, default_max_tokens: int) -> None:
    """Serve a local model over an OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/models)."""
    from alignlab.evals.backends import make_model, model_spec_techniques, parse_spec
    from alignlab.evals.server import LOOPBACK, served_name as default_name, serve as run_server

    base, _ = model_spec_techniques(model_spec)
    if parse_spec(base)[0] != "local":
        raise UserError("serve needs a local model (embedded, a folder or a cached id), not an endpoint")
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be between 0 and 65535 (got {port})")
    for option, value in (("--batch-size", batch_size), ("--threads", threads), ("--max-queue", max_queue),
                          ("--max-body", max_body), ("--default-max-tokens", default_max_tokens)):
        if value < 1:
            raise UserError(f"{option} must be at least 1 (got {value})")
    if request_timeout <= 0:
        raise UserError(f"--request-timeout must be positive (got {request_timeout:g})")
    name = served_name or default_name(model_spec)
    model = make_model(model_spec, dtype=dtype, threads=threads, batch_size=batch_size)

    def ready(bound_host: str, bound_port: int) -> None:
        if host not in LOOPBACK:
            err_console.print(f"[yellow]warning: listening on {host}, reachable from other machines; there is no "
                              "authentication[/yellow]")
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        click.echo(f"alignlab serve: {name} at http://{shown}:{bound_port}/v1 "
                   f"(use --model openai:http://{shown}:{bound_port}/v1/{name}); Ctrl-C stops")
        sys.stdout.flush()

    started = time.time()
    # SIGTERM (service managers, test harnesses) and Ctrl-C stop the server cleanly, exit status 0; the
    # handlers are installed while serving even when the process started with SIGINT ignored (a background job).
    try:
        app = run_server(model, host=host, port=port, model_name=name, on_ready=ready, max_batch=batch_size,
                         max_queue=max_queue, request_timeout=request_timeout, max_body=max_body,
                         default_max_tokens=default_max_tokens)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    err_console.print(f"[dim]served {app.state.engine.batches} batches in {time.time() - started:.0f} s[/dim]")
