"""Report pieces of behavioural-evals (protocols of Sharma et al. 2023, arXiv:2310.13548): labels, tables, pages.

Kept apart from experiments/behavioural_evals.py, which imports them, so that file stays about the grid and its cells.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from typing import Any

from alignlab.core.record import RunRecord
from alignlab.core.section import Table

PROTOCOL_SETTINGS = ("answer_suffix", "wording", "judge")
"""The protocol settings the experiment passes to every eval whose config has them (evals/protocols.py)."""


def eval_label(config: dict[str, Any]) -> str:
    """A cell's eval as the report names it: the eval, then the user's data set where the cell used one."""
    return f"{config['eval']} [data {config['data']}]" if config.get("data") else config["eval"]


def eval_of(label: str) -> str:
    """The registered eval name in an `eval_label`."""
    return label.split(" [data ", 1)[0]


def setting_text(value: Any) -> str:
    """A protocol setting as the report's protocol table shows it."""
    if value is None:
        return "-"
    return json.dumps(value) if isinstance(value, str) else str(value)


def protocol_table(records: list[RunRecord]) -> Table:
    """Which protocol each eval ran with: the settings its stored config holds (what the eval used), its preset,
    the weights dtype; one row per (eval, model, protocol), with its seeds."""
    rows: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for r in records:
        used = r.data.get("eval_config", {})
        key = (eval_label(r.config), r.config["model"], r.config.get("eval_preset", "default"),
               r.data.get("dtype", r.config.get("dtype", "float32")),
               *(setting_text(used.get(k)) if k in used else "-" for k in PROTOCOL_SETTINGS))
        rows[key].append(r.seed)
    return Table(
        "Protocol of each eval", ["eval", "model", "preset", "dtype"] + list(PROTOCOL_SETTINGS) + ["seeds"],
        [list(k) + [", ".join(map(str, sorted(s)))] for k, s in sorted(rows.items())],
        "The settings each eval ran with, as stored with its results: answer_suffix ends the first user turn (\"\" = "
        "the question alone, Sharma et al.'s protocol); wording = the suggestion templates (sharma = Sharma et al.'s "
        "verbatim); judge = the model that decided instead of the rules (\"\" = the rules); '-' = the eval has no "
        "such setting. The exact turns are on each eval's card (alignlab describe NAME).")


def transcripts_html(title: str, transcripts: list[dict[str, Any]]) -> str:
    """One self-contained page of a cell's transcripts: every arm's messages (or its scores) per item."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
             "body{font-family:system-ui,sans-serif;max-width:900px;margin:auto;padding:1rem}"
             ".m{margin:.2rem 0;padding:.3rem .5rem;border-radius:4px;white-space:pre-wrap}"
             ".user{background:#eef3fb}.assistant{background:#f3f9ee}.system,.scores{background:#f5f5f5;"
             "font-size:.85rem}h3{margin-bottom:.2rem}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for t in transcripts:
        parts.append(f"<h2>{html.escape(str(t.get('id')))} "
                     f"<small>({html.escape(str(t.get('category', '')))})</small></h2>")
        for arm, msgs in t.items():
            if arm in ("id", "category"):
                continue
            parts.append(f"<h3>{html.escape(arm)}</h3>")
            if isinstance(msgs, list) and msgs and isinstance(msgs[0], dict) and "role" in msgs[0]:
                for m in msgs:
                    parts.append(f"<div class='m {html.escape(m['role'])}'><b>{html.escape(m['role'])}:</b> "
                                 f"{html.escape(str(m['content']))}</div>")
            else:
                parts.append(f"<pre>{html.escape(json.dumps(msgs, indent=1))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
