"""`alignlab matrix`: run every compatible technique x experiment pair (each experiment's quick preset
unless --full) with paired baselines, then show the technique x failure-mode matrix and write the report."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table as RichTable

from alignlab.core import registry
from alignlab.core.errors import UserError
from alignlab.core.store import Store
from alignlab.reports import matrix as tm


def _plan(experiments: tuple[str, ...], techniques: tuple[str, ...]) -> dict[str, list[str]]:
    """{experiment: [technique specs]} for the chosen (default: every) experiment and technique."""
    exps = [registry.resolve("experiment", e) for e in experiments] or \
        [n for n in registry.names("experiment") if registry.get("experiment", n).slots]
    techs = {registry.resolve("technique", t) for t in techniques}
    out = {}
    for e in exps:
        if not registry.get("experiment", e).slots:
            with_slots = ", ".join(n for n in registry.names("experiment") if registry.get("experiment", n).slots)
            raise UserError(f"experiment {e} exposes no technique slot; experiments with slots: {with_slots}")
        specs = [s for s in tm.compatible(e)
                 if not techs or registry.resolve("technique", tm.technique_name(s)) in techs]
        if specs:
            out[e] = specs
    if not out:
        raise UserError("no compatible technique x experiment pair among those chosen")
    return out


@click.command("matrix")
@click.option("--experiment", "experiments", multiple=True,
              help="Only these experiments (repeatable; default: all with slots).")
@click.option("--technique", "techniques", multiple=True, help="Only these techniques (repeatable; default: all).")
@click.option("--full", is_flag=True, help="Each experiment's default config instead of its quick preset.")
@click.option("--seeds", type=int, default=None, help="Seeds per configuration (default: the experiment's).")
@click.option("--workers", type=int, default=2, show_default=True, help="Parallel cells.")
@click.option("--dry-run", is_flag=True, help="List the pairs and settings that would run, run nothing.")
@click.pass_context
def matrix(ctx: click.Context, experiments: tuple[str, ...], techniques: tuple[str, ...], full: bool,
           seeds: int | None, workers: int, dry_run: bool) -> None:
    """Run every compatible technique x failure-mode pair (paired with the baseline on the same seeds),
    then print the matrix and write the report."""
    from alignlab.cli.main import console, run_one, write_report

    runs_dir = Path(ctx.obj["runs_dir"])
    plan = _plan(experiments, techniques)
    for e, specs in plan.items():
        console.print(f"[bold]{e}[/bold] ({registry.get('experiment', e).failure_mode}): {', '.join(specs)}")
    if dry_run:
        return
    for e, specs in plan.items():
        run_one(e, runs_dir, not full, seeds, workers, "local", None, ("techniques=" + ",".join(specs),), False)
    out = write_report(runs_dir)
    with Store(runs_dir, readonly=True) as store:
        by_exp = {e: store.records(e) for e in registry.names("experiment")}
    m = tm.build(by_exp)
    table = RichTable(title="technique x failure mode: benefit · alignment tax (mean ± 95% paired CI, n pairs)",
                      show_lines=True)
    table.add_column("technique")
    for f in m.failure_modes:
        table.add_column(f)
    for row in tm.as_rows(m):
        table.add_row(*row)
    console.print(table)
    console.print(f"Report: [bold]{out.resolve()}[/bold]")
