"""The static HTML report: one self-contained file, figures inline as SVG, readable offline."""

from __future__ import annotations

import html
import math
import time
from pathlib import Path
from typing import Any

from alignlab.core import registry
from alignlab.core.errors import RegistryError
from alignlab.core.experiment import TECHNIQUE_KEY
from alignlab.core.paired import with_without_table
from alignlab.core.record import RunRecord
from alignlab.core.section import Figure, Table
from alignlab.core.stats import MeanCI
from alignlab.reports import matrix as tm
from alignlab.reports.summary import summarize, varying_keys

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1rem 1.5rem;color:#1d2433;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #dde3ec;padding-bottom:.2rem;margin-top:2.5rem}
.meta{color:#5b6577;font-size:.9rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
th,td{border:1px solid #d5dbe5;padding:.2rem .5rem;text-align:right}
th{background:#f1f4f9}td.l,th.l{text-align:left}
figure{margin:1rem 0;display:inline-block;vertical-align:top;max-width:100%}
figure svg{max-width:100%;height:auto}figcaption{font-size:.85rem;color:#444;max-width:720px}
.findings li{margin:.25rem 0}.err{color:#a01b1b}
details{margin:.4rem 0}summary{cursor:pointer;color:#24508f}
pre{background:#f6f8fa;padding:.5rem;overflow-x:auto;font-size:.8rem}
dl.objectives{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem}
dl.objectives dt{font-weight:600}
table.matrix td{text-align:left;vertical-align:top;font-size:.78rem}table.matrix td.na{color:#9aa3b2}
table.matrix td.nr{color:#8a6d00}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, MeanCI):
        return value.fmt()
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def render_table(table: Table, collapse_over: int = 40) -> str:
    head = "".join(f'<th class="l">{_e(c)}</th>' if i == 0 else f"<th>{_e(c)}</th>"
                   for i, c in enumerate(table.columns))
    body = "".join(
        "<tr>" + "".join(f'<td class="l">{_e(_cell(v))}</td>' if i == 0 else f"<td>{_e(_cell(v))}</td>"
                         for i, v in enumerate(row)) + "</tr>"
        for row in table.rows
    )
    inner = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if table.caption:
        inner += f'<p class="meta">{_e(table.caption)}</p>'
    title = f"{_e(table.title)} ({len(table.rows)} rows)"
    if len(table.rows) > collapse_over:
        return f'<div class="table"><details><summary>{title}</summary>{inner}</details></div>'
    return f'<div class="table"><h3>{_e(table.title)}</h3>{inner}</div>'


def render_figure(fig: Figure) -> str:
    return (f'<figure class="figure"><div class="svg-wrap">{fig.svg}</div>'
            f"<figcaption><b>{_e(fig.title)}.</b> {_e(fig.caption)}</figcaption></figure>")


def summary_table(experiment: Any, records: list[RunRecord]) -> Table:
    """The generic table every section has: specified, intended and gap per configuration."""
    summaries = summarize(records)
    keys = (experiment.table_columns() if experiment is not None else []) or varying_keys(summaries)
    if any(s.config.get(TECHNIQUE_KEY) for s in summaries) and TECHNIQUE_KEY not in keys:
        keys = keys + [TECHNIQUE_KEY]
    rows = []
    for s in summaries:
        rows.append(
            [s.config.get(k) for k in keys]
            + [s.metrics.get(m, MeanCI(math.nan, math.nan, 0)) for m in ("specified", "intended", "gap")]
            + [s.seeds, s.errors]
        )
    return Table(
        "Specified and intended objectives per configuration",
        keys + ["specified", "intended", "gap", "seeds", "errors"], rows,
        "Mean ± half-width of the 95% Student-t interval across seeds. gap = specified − intended.",
    )


def artifact_links(records: list[RunRecord], runs_dir: Path | None, limit: int = 200) -> list[str]:
    """Links to the cells' artifact files, relative to the report (which sits in the runs folder)."""
    out = []
    for r in records:
        for art in r.artifacts:
            path = Path(art)
            if runs_dir is not None and path.is_absolute():
                try:
                    path = path.relative_to(runs_dir)
                except ValueError:
                    pass
            href = path.as_posix() if not path.is_absolute() else path.as_uri()
            out.append(f'<li><a href="{_e(href)}">{_e(path.as_posix())}</a> '
                       f"<span class='meta'>({_e(r.config_hash)} seed {r.seed})</span></li>")
            if len(out) >= limit:
                return out
    return out


def experiment_section(name: str, records: list[RunRecord], runs_dir: Path | None = None) -> str:
    try:
        cls = registry.get("experiment", name)
        exp = cls()
    except RegistryError:
        cls = exp = None
    title = getattr(cls, "title", "") or name
    parts = [f'<section class="experiment" id="{_e(name)}" data-experiment="{_e(name)}">',
             f"<h2>{_e(title)} <small class='meta'>{_e(name)}</small></h2>"]
    if cls is None:
        parts.append('<p class="err">This experiment is not registered in this installation; '
                     'showing stored records only.</p>')
    else:
        parts.append(f"<p>{_e(cls.summary)}</p>")
        parts.append(f'<p class="meta">Source: {_e(cls.source)}</p>')
        parts.append('<dl class="objectives">'
                     f"<dt>specified</dt><dd>{_e(cls.specified_label)}</dd>"
                     f"<dt>intended</dt><dd>{_e(cls.intended_label)}</dd></dl>")
    ok = [r for r in records if r.status == "ok"]
    errors = [r for r in records if r.status != "ok"]
    versions = sorted({r.code_version for r in records})
    shown = ", ".join(versions) if len(versions) <= 3 else f"{len(versions)} (each cell hashes the code it runs)"
    parts.append(f'<p class="meta">{len(records)} records ({len(ok)} ok, {len(errors)} failed); '
                 f"code version{'s' if len(versions) > 1 else ''}: {_e(shown)}</p>")
    if exp is not None and ok:
        # The experiment's own analysis reads its baseline cells; technique cells go to the paired table.
        base = exp.analysed(ok)
        findings = exp.findings(base) if base else []
        if findings:
            parts.append('<h3>Claims checked</h3><ul class="findings">'
                         + "".join(f"<li>{_e(f)}</li>" for f in findings) + "</ul>")
        for fig in exp.figures(base) if base else []:
            parts.append(render_figure(fig))
        for table in exp.tables(base) if base else []:
            parts.append(render_table(table))
        paired = with_without_table(exp, ok)
        if paired is not None:
            parts.append(f'<div class="with-without">{render_table(paired)}</div>')
    parts.append(render_table(summary_table(exp, records), collapse_over=25))
    links = artifact_links(records, runs_dir)
    if links:
        parts.append(f"<details class='artifacts'><summary>Artifacts ({len(links)} files: transcripts, "
                     f"checkpoints, logs)</summary><ul>{''.join(links)}</ul></details>")
    if errors:
        parts.append(f'<h3 class="err">Failed cells ({len(errors)})</h3>')
        for r in errors[:20]:
            parts.append(f"<details><summary>{_e(r.config_hash)} seed {r.seed}: {_e(r.error)}</summary>"
                         f"<pre>{_e(r.traceback or '')}</pre></details>")
    parts.append("</section>")
    return "\n".join(parts)


def headline(name: str, records: list[RunRecord]) -> tuple[str, Any]:
    """(label, value) of an experiment's headline, or a dash where it has none."""
    try:
        exp = registry.make("experiment", name)
    except RegistryError:
        return "not registered here", "-"
    result = exp.headline(exp.analysed(records))
    return result if result is not None else ("(see its section)", "-")


def matrix_section(by_exp: dict[str, list[RunRecord]]) -> str:
    """The technique x failure-mode matrix (rows techniques, columns experiments)."""
    m = tm.build(by_exp)
    if not m.experiments or not m.techniques:
        return ""
    head = "".join(f"<th>{_e(f)}<br><small class='meta'>{_e(e)}</small></th>"
                   for f, e in zip(m.failure_modes, m.experiments))
    rows = []
    for t in m.techniques:
        tds = []
        for e in m.experiments:
            cell = m.cells[(t, e)]
            cls = {"ok": "ok", tm.NA: "na", tm.NOT_RUN: "nr"}[cell.status]
            tds.append(f'<td class="{cls}" data-technique="{_e(t)}" data-experiment="{_e(e)}">'
                       + "<br>".join(_e(line) for line in tm.cell_text(cell)) + "</td>")
        rows.append(f'<tr><td class="l"><a href="#technique-{_e(t)}">{_e(t)}</a></td>{"".join(tds)}</tr>')
    measured = sum(c.status == "ok" for c in m.cells.values())
    cards = "".join(
        f'<dt id="technique-{_e(t)}">{_e(t)} <small class="meta">slot {_e(c.slot)}</small></dt>'
        f"<dd>{_e(c.summary)} <span class='meta'>{_e(c.source)}</span></dd>"
        for t in m.techniques for c in [registry.get("technique", t)])
    return (f'<section id="technique-matrix"><h2>Techniques x failure modes</h2>'
            f"<p>Each cell: the technique's benefit (paired change in the experiment's intended objective; "
            f"positive is better) and its alignment tax (paired loss of the specified objective or capability; "
            f"positive is a cost), mean ± 95% paired Student-t half-width over every configuration and seed "
            f"of that experiment, n pairs. 'n/a': the experiment has no slot the technique acts on; "
            f"'not run': compatible, no paired records yet (<code>alignlab matrix</code> runs them). "
            f"{measured} measured cells. Units are the experiment's own (see its section).</p>"
            f'<table class="matrix"><thead><tr><th class="l">technique</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table><details><summary>The techniques</summary>"
            f"<dl>{cards}</dl></details></section>")


def render(records: list[RunRecord], store_path: str) -> str:
    """The whole report page."""
    by_exp: dict[str, list[RunRecord]] = {}
    for r in records:
        by_exp.setdefault(r.experiment, []).append(r)
    overview_rows = []
    for name, recs in sorted(by_exp.items()):
        label, value = headline(name, recs)
        overview_rows.append([name, len(recs), sum(r.status != "ok" for r in recs), label, value])
    overview = Table("Experiments", ["experiment", "records", "failed", "headline", "value"], overview_rows,
                     "Each experiment's own headline over its baseline cells (mean ± 95% Student-t half-width); its "
                     "section explains it. Units differ between experiments.")
    runs_dir = Path(store_path).resolve().parent
    sections = [experiment_section(name, recs, runs_dir) for name, recs in sorted(by_exp.items())]
    toc = "".join(f'<li><a href="#{_e(n)}">{_e(n)}</a></li>' for n in sorted(by_exp))
    body = "".join(sections) if sections else (
        "<p>No records yet: run <code>alignlab run NAME</code> or <code>alignlab demo</code>.</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>alignlab report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body><header><h1>alignlab report</h1>
<p class="meta">Every run measures the specified objective (the proxy) and the intended one (the truth);
the gap between them is the alignment problem in numbers. Generated {_e(time.strftime('%Y-%m-%d %H:%M:%S'))}
from {_e(store_path)}.</p><nav><ul>{toc}</ul></nav></header>
<main>{render_table(overview)}
{matrix_section(by_exp)}
{body}
</main></body></html>
"""
