"""`alignlab cai`: Constitutional AI constitutions (Bai et al. 2022, arXiv:2212.08073): check a constitution file
(alignlab TOML or llm-swarm JSON) and show the bundled ones.

Added to the main group through cli/main.py's EXTRA_COMMANDS; a bad file is one line naming the file, line and
field, exit code 2 (cli/main.py's handling of UserError)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape

console = Console()


@click.group("cai")
def cai() -> None:
    """Constitutional AI: check and show constitutions (`alignlab run constitutional-ai` trains and measures)."""


@cai.command("check")
@click.argument("file")
def check(file: str) -> None:
    """Validate a constitution FILE (.toml: alignlab's format; .json: llm-swarm's) or a bundled name, and print
    what it holds."""
    from alignlab.cai.constitution import load

    c = load(file)
    console.print(f"ok: {escape(c.summary())}")


@cai.command("show")
@click.argument("name", default="default")
def show(name: str) -> None:
    """Print a constitution's principles and comparison questions (NAME: bundled name or file)."""
    from alignlab.cai.constitution import GENERIC_COMPARISON, bundled_names, load

    c = load(name)
    console.print(f"[bold]{escape(c.name)}[/bold]: {escape(c.description)}")
    for p in c.principles:
        console.print(f"  principle [bold]{escape(p.name)}[/bold]\n    critique: {escape(p.critique)}\n"
                      f"    revision: {escape(p.revision)}")
    for q in c.comparisons:
        console.print(f"  comparison [bold]{escape(q.name)}[/bold]: {escape(q.text)}")
    if not c.comparisons:
        console.print(f"  (no comparison principles: AI feedback asks {GENERIC_COMPARISON!r})")
    console.print(f"  {len(c.examples)} few-shot dialogues; bundled: {', '.join(bundled_names())}")
