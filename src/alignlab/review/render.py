"""A review as Markdown, as one self-contained HTML page in the lab's report style (reports/html.py), or as JSON.

The page's stylesheet repeats the report's (this layer sits below reports/, so it cannot import it; a test keeps the two
in step) with a few rules for severity badges. No script, no external resource: readable offline.
"""

from __future__ import annotations

import html
import json
from typing import Any

from alignlab.review.evidence import fmt
from alignlab.review.nist import FUNCTIONS

REPORT_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1rem 1.5rem;color:#1d2433;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #dde3ec;padding-bottom:.2rem;margin-top:2.5rem}
.meta{color:#5b6577;font-size:.9rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
th,td{border:1px solid #d5dbe5;padding:.2rem .5rem;text-align:right}
th{background:#f1f4f9}td.l,th.l{text-align:left}
.findings li{margin:.25rem 0}.err{color:#a01b1b}
details{margin:.4rem 0}summary{cursor:pointer;color:#24508f}
pre{background:#f6f8fa;padding:.5rem;overflow-x:auto;font-size:.8rem}
"""
CSS = (
    REPORT_CSS
    + """
td{text-align:left;vertical-align:top}
.sev{display:inline-block;padding:0 .4rem;border-radius:3px;font-size:.75rem;font-weight:600;color:#fff}
.sev-critical{background:#6d0f0f}.sev-high{background:#b3261e}.sev-medium{background:#b86e00}
.sev-low{background:#4a6fa5}.sev-info{background:#6b7684}
.finding{border-left:4px solid #d5dbe5;padding:.3rem .8rem;margin:.6rem 0}
.finding.measured{border-left-color:#2f7d4f}.ans-no{color:#a01b1b;font-weight:600}.ans-partial{color:#8a6d00}
.generated{border:2px dashed #8a6d00;padding:.5rem 1rem;background:#fffbea}
"""
)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _lines(f: dict[str, Any]) -> str:
    return ", ".join(f"{k} (line {v})" for k, v in f.get("lines", {}).items()) or ", ".join(f["fields"])


def _experiments(f: dict[str, Any]) -> str:
    return "; ".join(f"`{x['command']}`" for x in f["experiments"])


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n"


def _evidence_md(result: dict[str, Any]) -> list[str]:
    out = []
    for e in result["evidence"]:
        if e["kind"] == "eval":
            if "error" in e:
                out.append(f"- {e['name']} on {e['model']}: not measured ({e['error']})")
                continue
            out.append(f"- **{e['name']}** on `{e['model']}`, {e['items']} items, {e['seconds']:.0f} s:")
            out += [
                f"  - {r['label']} (`{r['metric']}`): {fmt(r['estimate'])} -> {r['severity']}" for r in e["effects"]
            ]
        elif e["kind"] == "guard":
            p = e["probes"]
            out.append(
                f"- **guard policy {e['policy']}** ({e['version']}), {e['seconds']:.1f} s: must-deny probes denied "
                f"{fmt(p['denied_share'])}; ordinary calls allowed {fmt(p['benign_allowed_share'])}"
            )
            out += [
                f"  - {c}: {v['as_expected']}/{v['n']} as expected ({v['expect']})"
                + (f"; not: {', '.join(v['unexpected'])}" if v["unexpected"] else "")
                for c, v in p["classes"].items()
            ]
            for arm, s in (e.get("scenario") or {}).items():
                out.append(
                    f"  - rigging scenario, {arm}: tests pass {s['specified']:.0f}, held-out checks "
                    f"{s['intended']:.2f}, test file changed {s['test_file_changed']}, denials {s['denials']}"
                )
        elif e["kind"] == "agent":
            out.append(
                f"- **agent command** `{' '.join(e['command'])}` under {e['policy']}: "
                + (
                    f"denied ({e['reason']})"
                    if not e["allowed"]
                    else f"exit {e['returncode']}, {len(e['exec_denied'])} program runs refused, "
                    f"{len(e['reverted'])} protected changes reverted"
                )
            )
            out += [f"  - refused: `{' '.join(x['argv'])}`: {x['reason']}" for x in e.get("exec_denied", [])]
    return out


def markdown(result: dict[str, Any]) -> str:
    c, cov = result["card"], result["coverage"]
    out = [
        f"# Alignment review: {c['name']}",
        "",
        f"Card: `{c['source']}`; autonomy: {c['autonomy']}; intended goal: {c['purpose']['intended_goal']}",
        "",
        "Findings: "
        + ", ".join(f"{n} {s}" for s, n in reversed(result["counts"].items()) if n)
        + f". Highest severity: **{result['max_severity']}**.",
        f"Re-measured: {cov['remeasured']} of {cov['total']} claims and rule findings "
        f"({cov['share']:.0%})" + ("" if cov["measured"] else " (measurement skipped)") + ".",
        "",
    ]
    out += ["## Findings by risk category", ""]
    by_id = {f["id"]: f for f in result["findings"]}
    for cat in result["categories"].values():
        out += [f"### {cat['title']}", ""]
        if not cat["findings"]:
            out += ["No finding.", ""]
        for fid in cat["findings"]:
            f = by_id[fid]
            tag = " (measured)" if f["origin"] == "measured" else ""
            out += [
                f"- **[{f['severity']}] {f['id']}: {f['title']}**{tag}",
                f"  - Why: {f['reasoning']}",
                f"  - Safeguard to add: {f['safeguard']}",
                f"  - Card: {_lines(f)}; NIST AI RMF: {', '.join(f['nist'])}",
            ]
            if f["experiments"]:
                out.append(f"  - Demonstrated by: {_experiments(f)}")
            out += [f"  - Evidence: {x['finding']} ({x['severity']}): {x['summary']}" for x in f["evidence"]]
        out.append("")
    if result["evidence"]:
        out += ["## Measured evidence", ""] + _evidence_md(result) + [""]
    out += [
        "## Metric-gaming analysis",
        "",
        "| metric | kind | known gaming | counter-metric to add | demonstrated by |",
        "|---|---|---|---|---|",
    ]
    for g in result["gaming"]:
        have = f" (has: {', '.join(g['counter_metrics'])})" if g["has_counter_metric"] else ""
        link = f"`{g['link']['command']}`" if g["link"] else "n/a"
        out.append(
            f"| {g['metric']} | {g['kind']}{' (inferred)' if g['kind_inferred'] else ''} | {g['pattern']}: "
            f"{g['how']} | {g['counter_metric']}{have} | {link} |"
        )
    out += ["", "## Checklist", "", "| question | answer | from the card | missing |", "|---|---|---|---|"]
    out += [f"| {q['question']} | {q['answer']} | {q['evidence']} | {q['missing']} |" for q in result["checklist"]]
    out += ["", "## NIST AI RMF", ""]
    for fn in FUNCTIONS:
        rows = result["nist"][fn]
        out.append(
            f"- **{fn}**: "
            + (
                "; ".join(f"{r['subcategory']} ({r['statement']}): {', '.join(r['findings'])}" for r in rows)
                or "no finding"
            )
        )
    out += ["", "## Claims re-measured", ""]
    out += [
        f"- `{cl['field']}`: {cl['claim']}: "
        + (f"re-measured by {', '.join(cl['measured'])}" if cl["measured"] else "not re-measured")
        for cl in result["claims"]
    ]
    if result["model_assisted"]:
        out += ["", "## Model-assisted review (MODEL-GENERATED, not checked by alignlab)", ""]
        for m in result["model_assisted"]:
            out += [f"### {m['mode']} ({m['model']}, template {m['template']})", "", m["text"].strip(), ""]
    return "\n".join(out).rstrip() + "\n"


def _finding_html(f: dict[str, Any]) -> str:
    ev = "".join(
        f"<li>Evidence {_e(x['finding'])} <span class='sev sev-{_e(x['severity'])}'>{_e(x['severity'])}</span>"
        f" {_e(x['summary'])}</li>"
        for x in f["evidence"]
    )
    exps = "".join(f"<li>Demonstrated by <code>{_e(x['command'])}</code></li>" for x in f["experiments"])
    return (
        f'<div class="finding{" measured" if f["origin"] == "measured" else ""}" data-id="{_e(f["id"])}" '
        f'data-severity="{_e(f["severity"])}"><b><span class="sev sev-{_e(f["severity"])}">{_e(f["severity"])}'
        f"</span> {_e(f['id'])}: {_e(f['title'])}</b>{' <i>(measured)</i>' if f['origin'] == 'measured' else ''}"
        f"<ul><li>Why: {_e(f['reasoning'])}</li><li>Safeguard to add: {_e(f['safeguard'])}</li>"
        f"<li class='meta'>Card: {_e(_lines(f))}; NIST AI RMF: {_e(', '.join(f['nist']))}</li>{exps}{ev}</ul></div>"
    )


def _table(head: list[str], rows: list[list[Any]], cls: str = "") -> str:
    h = "".join(f'<th class="l">{_e(c)}</th>' for c in head)
    b = "".join(
        "<tr>" + "".join(f"<td>{v if isinstance(v, _Raw) else _e(v)}</td>" for v in row) + "</tr>" for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>'


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def page(result: dict[str, Any], title: str | None = None) -> str:
    """The review as one self-contained HTML page."""
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title or 'alignlab review')}</title>"
        f"<style>{CSS}</style></head><body>{body(result)}</body></html>"
    )


def body(result: dict[str, Any]) -> str:
    """The review's HTML without the page around it (the web form embeds it)."""
    c, cov = result["card"], result["coverage"]
    by_id = {f["id"]: f for f in result["findings"]}
    parts = [
        f"<section id='review' data-card='{_e(c['name'])}'><h1>Alignment review: {_e(c['name'])}</h1>",
        f"<p class='meta'>Card {_e(c['source'])}; autonomy {_e(c['autonomy'])}; intended goal: "
        f"{_e(c['purpose']['intended_goal'])}</p>",
        f"<p id='summary'>Highest severity: <span class='sev sev-{_e(result['max_severity'])}'>"
        f"{_e(result['max_severity'])}</span>; "
        + ", ".join(f"{n} {s}" for s, n in reversed(result["counts"].items()) if n)
        + f". <span id='coverage'>Re-measured: {cov['remeasured']} of {cov['total']} claims and rule findings "
        f"({cov['share']:.0%})</span>.</p>",
        "<h2>Findings by risk category</h2>",
    ]
    for key, cat in result["categories"].items():
        parts.append(f"<div class='category' data-category='{_e(key)}'><h3>{_e(cat['title'])}</h3>")
        parts += [_finding_html(by_id[fid]) for fid in cat["findings"]] or ["<p class='meta'>No finding.</p>"]
        parts.append("</div>")
    if result["evidence"]:
        items = "".join(f"<li>{_e(line.lstrip('- '))}</li>" for line in _evidence_md(result))
        parts.append(f"<h2>Measured evidence</h2><ul id='evidence'>{items}</ul>")
    parts.append(
        "<h2>Metric-gaming analysis</h2>"
        + _table(
            ["metric", "kind", "known gaming", "counter-metric to add", "demonstrated by"],
            [
                [
                    g["metric"],
                    g["kind"],
                    f"{g['pattern']}: {g['how']}",
                    g["counter_metric"]
                    + (f" (has: {', '.join(g['counter_metrics'])})" if g["has_counter_metric"] else ""),
                    _Raw(f"<code>{_e(g['link']['command'])}</code>") if g["link"] else "n/a",
                ]
                for g in result["gaming"]
            ],
            "gaming",
        )
    )
    parts.append(
        "<h2>Checklist</h2>"
        + _table(
            ["question", "answer", "from the card", "missing"],
            [
                [
                    q["question"],
                    _Raw(f"<span class='ans-{_e(q['answer'])}'>{_e(q['answer'])}</span>"),
                    q["evidence"],
                    q["missing"],
                ]
                for q in result["checklist"]
            ],
            "checklist",
        )
    )
    parts.append(
        "<h2>NIST AI RMF</h2>"
        + _table(
            ["function", "subcategory", "findings"],
            [
                [fn, f"{r['subcategory']}: {r['statement']}", ", ".join(r["findings"])]
                for fn in FUNCTIONS
                for r in result["nist"][fn]
            ],
            "nist",
        )
    )
    parts.append(
        "<h2>Claims re-measured</h2>"
        + _table(
            ["field", "claim", "re-measured by"],
            [[cl["field"], cl["claim"], ", ".join(cl["measured"]) or "not re-measured"] for cl in result["claims"]],
        )
    )
    if result["model_assisted"]:
        parts.append(
            "<h2>Model-assisted review</h2><div class='generated' id='model-assisted'><p><b>MODEL-GENERATED"
            "</b>: written by a language model from the card; not checked by alignlab.</p>"
            + "".join(
                f"<h3>{_e(m['mode'])} ({_e(m['model'])})</h3><pre>{_e(m['text'])}</pre>"
                for m in result["model_assisted"]
            )
            + "</div>"
        )
    parts.append("</section>")
    return "".join(parts)
