"""The `alignlab` command line (click for parsing, rich for output)."""

from __future__ import annotations

import inspect
import os
import sys
import time
import webbrowser
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table as RichTable

from alignlab.core import registry, runner
from alignlab.core.config import apply_overrides, describe_fields
from alignlab.core.errors import UserError
from alignlab.core.store import Store
from alignlab.core.technique import SLOTS

console = Console()
err_console = Console(stderr=True)

RUNS_DIR_HELP = "Folder of the results store and artifacts (env ALIGNLAB_RUNS; default ./runs)."


def _runs_dir(ctx: click.Context) -> Path:
    return Path(ctx.obj["runs_dir"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--runs-dir", default=lambda: os.environ.get("ALIGNLAB_RUNS", "runs"), show_default="runs",
              help=RUNS_DIR_HELP)
@click.option("--device", default=None, metavar="auto|cpu|cuda|cuda:N",
              help="Where models and tensors run (env ALIGNLAB_DEVICE; default auto: a GPU where torch sees one).")
@click.version_option(package_name="alignlab")
@click.pass_context
def cli(ctx: click.Context, runs_dir: str, device: str | None) -> None:
    """alignlab: the gap between what we tell an AI system to optimize and what we want."""
    ctx.ensure_object(dict)
    ctx.obj["runs_dir"] = runs_dir
    from alignlab.core import device as devices

    if device is not None:  # worker processes inherit the environment
        os.environ[devices.ENV] = devices.parse(device, source="--device")
    if devices.requested().startswith("cuda"):  # checked before any work (imports torch only for a CUDA request)
        devices.resolve()


def _one_line(obj: object) -> str:
    title = getattr(obj, "title", "")
    if title:
        return title
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


@cli.command("list")
@click.argument("kind", required=False)
def list_cmd(kind: str | None) -> None:
    """List registered components (all kinds, or one KIND: env, agent, technique, eval, control, experiment)."""
    kinds = [kind] if kind else list(registry.KINDS)
    for k in kinds:
        if k not in registry.KINDS:
            raise UserError(f"unknown component kind {k!r}; valid kinds: {', '.join(registry.KINDS)}")
    table = RichTable(title="alignlab components")
    table.add_column("kind")
    table.add_column("name", style="bold")
    table.add_column("what it is")
    for k in kinds:
        for name in registry.names(k):
            obj = registry.get(k, name)
            tag = " [tour]" if getattr(obj, "tour", False) else ""
            table.add_row(k, name, f"{_one_line(obj)}{tag}")
    console.print(table)


def _find(name: str) -> tuple[str, object]:
    """The first kind under which NAME is registered (experiments first)."""
    for kind in ("experiment",) + tuple(k for k in registry.KINDS if k != "experiment"):
        try:
            return kind, registry.get(kind, name)
        except UserError:
            continue
    everything = [n for k in registry.KINDS for n in registry.names(k)]
    raise UserError(f"nothing registered as {name!r}; registered names: {', '.join(everything)}")


@cli.command()
@click.argument("name")
def describe(name: str) -> None:
    """Show a component's card and its config keys (for --set)."""
    kind, obj = _find(name)
    console.print(f"[bold]{getattr(obj, 'registered_name', name)}[/bold] ({kind}): {_one_line(obj)}")
    if kind == "experiment":
        console.print(obj.summary)
        console.print(f"[dim]Source:[/dim] {obj.source}")
        console.print(f"[dim]specified:[/dim] {obj.specified_label}\n[dim]intended:[/dim] {obj.intended_label}")
        if obj.slots:
            console.print(f"[dim]technique slots:[/dim] {', '.join(obj.slots)} (failure mode: {obj.failure_mode})")
    elif kind == "technique":
        console.print(obj.summary, highlight=False)
        console.print(f"[dim]Source:[/dim] {obj.source}\n[dim]slot:[/dim] {obj.slot}: {SLOTS.get(obj.slot, '')}",
                      highlight=False)
        fits = [n for n in registry.names("experiment") if obj.slot in registry.get("experiment", n).slots]
        console.print(f"[dim]experiments with this slot:[/dim] {', '.join(fits) or 'none'}", highlight=False)
    else:
        console.print(inspect.cleandoc(obj.__doc__ or ""), highlight=False)
    config_cls = getattr(obj, "Config", None)
    if config_cls is None:
        return
    table = RichTable(
        title="config keys (alignlab run NAME --set key=value)" if kind == "experiment" else "config keys")
    for col in ("key", "type", "default", "quick", "meaning"):
        table.add_column(col)
    quick = config_cls.quick()
    for (key, tp, default, doc) in describe_fields(config_cls):
        table.add_row(key, tp, default, repr(getattr(quick, key)).replace("'", ""), doc)
    console.print(table)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
    )


def run_one(name: str, runs_dir: Path, quick: bool, seeds: int | None, workers: int, backend: str,
            address: str | None, sets: tuple[str, ...], fresh: bool) -> runner.RunSummary:
    cls = registry.get("experiment", name)
    config = cls.Config.quick() if quick else cls.Config()
    config = apply_overrides(config, list(sets), owner=cls.registered_name)
    with _progress() as progress:
        task = progress.add_task(cls.registered_name, total=None)

        def on_start(todo: int, skipped: int) -> None:
            progress.update(task, total=todo)
            if skipped:
                progress.console.print(f"[dim]{cls.registered_name}: {skipped} cells already stored, skipped "
                                       "(--fresh to re-run them)[/dim]")

        summary = runner.run(
            cls.registered_name, config, seeds=seeds, quick=quick, workers=workers, backend=backend,
            address=address, fresh=fresh, runs_dir=runs_dir,
            progress=lambda done, total: progress.update(task, completed=done), on_start=on_start,
        )
    colour = "red" if summary.failed else "green"
    console.print(f"[{colour}]{summary.experiment}: {summary.ok} ok, {summary.failed} failed, "
                  f"{summary.skipped} skipped of {summary.total} cells in {summary.seconds:.1f} s[/{colour}]")
    return summary


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Run every registered experiment.")
@click.option("--quick", is_flag=True, help="Use each experiment's quick preset (seconds on a laptop CPU).")
@click.option("--seeds", type=int, default=None, help="Seeds per configuration (default: the experiment's).")
@click.option("--workers", type=int, default=2, show_default=True, help="Parallel cells.")
@click.option("--backend", type=click.Choice(runner.BACKENDS), default="local", show_default=True,
              help="local process pool, or Ray.")
@click.option("--address", default=None, help="Ray cluster address (default: start a local Ray).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a config key (see `alignlab describe NAME`); repeatable.")
@click.option("--fresh", is_flag=True, help="Re-run cells already stored (their records are replaced).")
@click.pass_context
def run(ctx: click.Context, names: tuple[str, ...], all_: bool, quick: bool, seeds: int | None, workers: int,
        backend: str, address: str | None, sets: tuple[str, ...], fresh: bool) -> None:
    """Run (or resume) experiments; results go to the store under --runs-dir."""
    if all_ and names:
        raise UserError("give experiment names or --all, not both")
    if not names and not all_:
        raise UserError(
            f"name an experiment to run, or --all; valid experiments: {', '.join(registry.names('experiment'))}")
    targets = registry.names("experiment") if all_ else [registry.resolve("experiment", n) for n in names]
    if sets and len(targets) > 1:
        raise UserError("--set applies to one experiment; run the experiments one at a time to override keys")
    # Validate every target's config before anything runs (bad input changes nothing).
    for name in targets:
        cls = registry.get("experiment", name)
        config = apply_overrides(cls.Config.quick() if quick else cls.Config(), list(sets), owner=name)
        cls(config).grid()  # the grid itself can name unknown components (e.g. --set envs=...)
    failed = 0
    for name in targets:
        failed += run_one(name, _runs_dir(ctx), quick, seeds, workers, backend, address, sets, fresh).failed
    console.print(f"[dim]Results in {_runs_dir(ctx) / 'alignlab.sqlite'}; `alignlab report` renders them.[/dim]")
    if failed:
        sys.exit(1)


def write_report(runs_dir: Path, fmt: str = "html", output: str | None = None,
                 experiments: tuple[str, ...] = ()) -> Path:
    from alignlab.reports import export, html

    with Store(runs_dir, readonly=True) as store:
        records = store.records()
        path_str = str(store.path)
    if experiments:
        wanted = {registry.resolve("experiment", e) for e in experiments}
        records = [r for r in records if r.experiment in wanted]
    text = {"html": lambda: html.render(records, path_str), "json": lambda: export.to_json(records),
            "csv": lambda: export.to_csv(records)}[fmt]()
    out = Path(output) if output else runs_dir / f"report.{fmt}"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)  # atomic: a half-written report never replaces a good one
    return out


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["html", "json", "csv"]), default="html", show_default=True)
@click.option("--output", "-o", default=None, help="Output file (default: RUNS_DIR/report.FORMAT; '-' for stdout).")
@click.option("--experiment", "experiments", multiple=True, help="Only these experiments (repeatable).")
@click.option("--open", "open_", is_flag=True, help="Open the HTML report in a browser.")
@click.pass_context
def report(ctx: click.Context, fmt: str, output: str | None, experiments: tuple[str, ...], open_: bool) -> None:
    """Render the store to one HTML page (figures inline as SVG), or export JSON / CSV."""
    if output == "-":
        from alignlab.reports import export

        with Store(_runs_dir(ctx), readonly=True) as store:
            records = store.records()
        if fmt == "html":
            raise UserError("--output - is for --format json or csv")
        click.echo(export.to_json(records) if fmt == "json" else export.to_csv(records), nl=False)
        return
    with console.status("rendering report"):
        out = write_report(_runs_dir(ctx), fmt, output, experiments)
    console.print(f"Report: [bold]{out.resolve()}[/bold]")
    if open_:
        if not webbrowser.open(out.resolve().as_uri()):
            console.print("[yellow]No browser available here; open the file above.[/yellow]")


@cli.command()
@click.option("--workers", type=int, default=2, show_default=True, help="Parallel cells.")
@click.pass_context
def demo(ctx: click.Context, workers: int) -> None:
    """The tour: run the experiments marked for it (quick presets), write the report, summarize."""
    from alignlab.reports.html import headline

    runs_dir = _runs_dir(ctx)
    tour = [n for n in registry.names("experiment") if registry.get("experiment", n).tour]
    console.rule("[bold]alignlab tour")
    started = time.time()
    for name in tour:
        cls = registry.get("experiment", name)
        console.print(f"[bold]{cls.title}[/bold] ({name}): {cls.summary}")
        run_one(name, runs_dir, True, None, workers, "local", None, (), False)
    out = write_report(runs_dir)
    with Store(runs_dir, readonly=True) as store:
        records = {name: store.records(name) for name in tour}
    table = RichTable(title="headline per experiment (mean ± 95% CI over its baseline cells)")
    for col in ("experiment", "records", "headline", "value"):
        table.add_column(col)
    for name, recs in records.items():
        label, value = headline(name, recs)
        table.add_row(name, str(len(recs)), label, value.fmt() if hasattr(value, "fmt") else str(value))
    console.print(table)
    for name, recs in records.items():
        exp = registry.make("experiment", name)
        for line in exp.findings(exp.analysed(recs)):
            console.print(f" • {line}")
    console.print(f"Tour finished in {time.time() - started:.1f} s. Report: [bold]{out.resolve()}[/bold]")


# Command groups that live in their own modules (one per layer), added to the main group.
EXTRA_COMMANDS = (
    ("alignlab.cli.controls_cmds", ("guard", "audit")),
    ("alignlab.cli.heldout_cmd", ()),  # adds `heldout` to the guard group on import
    ("alignlab.cli.eval_cmds", ("eval_cmd", "serve")),
    ("alignlab.cli.matrix_cmds", ("matrix",)),
    ("alignlab.cli.review_cmds", ("review",)),
    ("alignlab.cli.cai_cmds", ("cai",)),
)


def _add_extra_commands() -> None:
    import importlib

    for module, names in EXTRA_COMMANDS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        for name in names:
            cli.add_command(getattr(mod, name))


_add_extra_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear line and exit code 2 for bad input, never a traceback."""
    try:
        cli.main(args=argv, prog_name="alignlab", standalone_mode=False)
    except UserError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        err_console.print("[red]aborted[/red]")
        sys.exit(130)
    except click.ClickException as exc:
        msg = exc.format_message().replace("\n", " ")
        err_console.print(f"[red]error:[/red] {msg} (see alignlab --help)", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted: finished cells are stored; run the same command to resume[/yellow]")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
