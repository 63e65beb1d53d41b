"""`alignlab review CARD`: the alignment review of a deployed system from its system card (review/, docs/review.md).

Added to the main group through cli/main.py's EXTRA_COMMANDS, whose `main` turns every UserError (a malformed card
included) into one line and exit code 2. Exit codes: 0 done, 1 the --fail-on gate found findings at or above it,
2 bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from alignlab.core.errors import UserError
from alignlab.review.assist import MODES
from alignlab.review.schema import SEVERITIES

err_console = Console(stderr=True)
FORMATS = ("md", "html", "json")


def _format(fmt: str | None, output: str | None) -> str:
    if fmt:
        return fmt
    suffix = Path(output).suffix.lower().lstrip(".") if output and output != "-" else ""
    return {"htm": "html", "markdown": "md"}.get(suffix, suffix) if suffix in FORMATS + ("htm", "markdown") else "md"


@click.command("review")
@click.argument("card", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="md, html or json (default: from --output's extension, else md).",
)
@click.option("--output", "-o", default=None, help="Write the review here (default: standard output).")
@click.option(
    "--measure/--no-measure",
    default=True,
    show_default=True,
    help="Re-measure what the card names (model evals, guard policy, agent command); --no-measure: rules "
    "only, no model or command runs.",
)
@click.option(
    "--items",
    type=click.IntRange(1, 1000),
    default=None,
    help="Items per eval on the card's model (default: the card's evidence.items, else 8).",
)
@click.option(
    "--evidence-model",
    default=None,
    metavar="SPEC",
    help="Measure this model spec instead of the card's evidence.model (e.g. a tiny local model folder).",
)
@click.option(
    "--scenario/--no-scenario",
    default=True,
    show_default=True,
    help="Run the test-rigging coding scenario under the card's guard policy (a few seconds).",
)
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    default=None,
    help="CI gate: exit 1 when any finding (rule-based or measured, never model-generated) is at or above "
    "this severity.",
)
@click.option(
    "--model",
    "assist_model",
    default=None,
    metavar="SPEC",
    help="Model-assisted review with any alignlab model spec (embedded, a local folder, "
    "openai:<base_url>/<model>); its text is listed apart and marked model-generated.",
)
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice(tuple(MODES)),
    help="Model-assisted review mode (repeatable; default: full): "
    + "; ".join(f"{k}: {v}" for k, v in MODES.items())
    + ".",
)
@click.option(
    "--input",
    "user_input",
    default=None,
    help="For --mode intent / autonomy / values: the request, workflow or use case (default: from the card).",
)
@click.option(
    "--prompts",
    "prompts_dir",
    default=None,
    metavar="DIR",
    help="Folder of your own MODE.md prompt templates, used instead of the shipped ones.",
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(16, 4096),
    default=256,
    show_default=True,
    help="Model-assisted review: tokens per reply.",
)
@click.option("--ui", is_flag=True, help="Serve the review web form on 127.0.0.1 (CARD, if given, fills the form).")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="Port of --ui.")
@click.option("--schema", is_flag=True, help="Print the system card's JSON Schema and exit.")
def review(
    card: str | None,
    fmt: str | None,
    output: str | None,
    measure: bool,
    items: int | None,
    evidence_model: str | None,
    scenario: bool,
    fail_on: str | None,
    assist_model: str | None,
    modes: tuple[str, ...],
    user_input: str | None,
    prompts_dir: str | None,
    max_new_tokens: int,
    ui: bool,
    port: int,
    schema: bool,
) -> None:
    """Review a deployed AI system from its system card (YAML; see examples/cards/ and docs/review.md)."""
    from alignlab.review import render
    from alignlab.review.card import load_card

    if schema:
        from alignlab.review.schema import SCHEMA

        click.echo(json.dumps(SCHEMA, indent=2))
        return
    if ui:
        from alignlab.review.web import HOST, serve

        prefill = Path(card).read_text(encoding="utf-8") if card and Path(card).is_file() else ""
        if card and not prefill:
            raise UserError(f"{card}: no such card file")
        err_console.print(f"review form on http://{HOST}:{port}/ (Ctrl-C stops it)")
        serve(port, prefill)
        return
    if not card:
        raise UserError("name a system card: alignlab review CARD.yaml (examples in examples/cards/), or --ui")
    if (modes or user_input or prompts_dir) and not assist_model:
        raise UserError("--mode, --input and --prompts are for the model-assisted review: add --model SPEC")
    fmt = _format(fmt, output)
    parsed = load_card(card)
    from alignlab.review.engine import gate
    from alignlab.review.engine import review as run_review

    def say(msg: str) -> None:
        err_console.print(f"[dim]measuring: {msg}[/dim]", highlight=False, soft_wrap=True)

    result = run_review(
        parsed,
        measure=measure,
        items=items,
        model_spec=evidence_model,
        scenario=scenario,
        progress=say if measure else None,
    )
    if assist_model:
        from alignlab.review.assist import assisted

        result["model_assisted"] = assisted(
            parsed, result["findings"], assist_model, list(modes) or ["full"], user_input, prompts_dir, max_new_tokens
        )
    text = {
        "md": render.markdown,
        "html": lambda r: render.page(r, f"alignlab review: {parsed.name}"),
        "json": render.to_json,
    }[fmt](result)
    if output and output != "-":
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
        err_console.print(
            f"Review: [bold]{out.resolve()}[/bold] (highest severity {result['max_severity']}; "
            f"re-measured {result['coverage']['remeasured']} of {result['coverage']['total']})",
            highlight=False,
            soft_wrap=True,
        )
    else:
        click.echo(text, nl=False)
    if fail_on:
        failing = gate(result, fail_on)
        if failing:
            err_console.print(
                f"[red]gate:[/red] {len(failing)} finding(s) at or above {fail_on}: "
                + ", ".join(f"{f['id']} ({f['severity']})" for f in failing),
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(1)
        err_console.print(f"gate: no finding at or above {fail_on}", highlight=False, soft_wrap=True)
