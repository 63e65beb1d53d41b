"""Model-assisted review: a language model (any alignlab backend) writes six kinds of review text from the card, each
from an editable prompt template (review/prompts/*.md, or a folder given with --prompts). The text is listed apart from
the rule-based findings and marked model-generated: nothing in it is checked, and the CI gate never reads it (LLM
red-teaming of this kind: Perez et al. 2022, "Red Teaming Language Models with Language Models", arXiv:2202.03286).
"""

from __future__ import annotations

import string
import time
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from alignlab.core.errors import UserError
from alignlab.review.card import Card

MODES: dict[str, str] = {
    "full": "full alignment review",
    "metric-gaming": "metric gaming",
    "intent": "intent clarification for a request",
    "autonomy": "agent autonomy risk for a workflow",
    "values": "value trade-offs for a use case",
    "red-team": "alignment red-team scenarios",
}
PLACEHOLDERS = ("card", "findings", "metrics", "goal", "input", "tools", "safeguards", "people")


def template_text(mode: str, prompts_dir: str | Path | None = None) -> tuple[str, str]:
    """(template text, where it came from) for a mode: PROMPTS_DIR/MODE.md if given, else the shipped one."""
    if mode not in MODES:
        raise UserError(f"unknown review mode {mode!r}; valid modes: {', '.join(MODES)}")
    if prompts_dir is not None:
        path = Path(prompts_dir) / f"{mode}.md"
        if not Path(prompts_dir).is_dir():
            raise UserError(f"--prompts {prompts_dir}: not a folder (it holds MODE.md templates: {', '.join(MODES)})")
        if path.is_file():
            return path.read_text(encoding="utf-8"), str(path)
    shipped = resources.files("alignlab.review").joinpath("prompts", f"{mode}.md")
    return shipped.read_text(encoding="utf-8"), f"shipped prompts/{mode}.md"


def fill(template: str, card: Card, findings: list[dict[str, Any]], user_input: str | None, where: str) -> str:
    """The prompt: the template with $card, $findings, $metrics, $goal, $input, $tools, $safeguards, $people filled."""
    values = {
        "card": yaml.safe_dump(card.data, sort_keys=False, allow_unicode=True).strip(),
        "findings": "\n".join(f"- [{f['severity']}] {f['title']}" for f in findings if f["origin"] == "rule")
        or "- none",
        "metrics": "\n".join(
            f"- {o['metric']} ({o['kind']}, optimized by {o.get('optimized_by', 'unstated')})" for o in card.objectives
        ),
        "goal": card.get("purpose.intended_goal"),
        "input": user_input or card.get("autonomy.description") or card.get("purpose.summary"),
        "tools": "\n".join(
            f"- {t['name']}: {', '.join(t['permissions'])}" + ("" if t.get("requires_approval") else " (no approval)")
            for t in card.tools
        )
        or "- none",
        "safeguards": "\n".join(f"- {k}: {v}" for k, v in (card.data.get("safeguards") or {}).items()) or "- none",
        "people": ", ".join(
            card.get("users.primary", []) + card.get("users.affected", []) + card.get("users.vulnerable", [])
        ),
    }
    try:
        return string.Template(template).substitute(values)
    except KeyError as exc:
        raise UserError(
            f"{where}: unknown placeholder ${exc.args[0]}; valid: {', '.join('$' + p for p in PLACEHOLDERS)}"
        ) from None
    except ValueError as exc:
        raise UserError(f"{where}: bad placeholder ({exc}); write $$ for a literal dollar sign") from None


def assisted(
    card: Card,
    findings: list[dict[str, Any]],
    model_spec: str,
    modes: list[str],
    user_input: str | None = None,
    prompts_dir: str | Path | None = None,
    max_new_tokens: int = 256,
    model: Any = None,
) -> list[dict[str, Any]]:
    """One model-generated text per mode (greedy decoding, so a rerun gives the same text)."""
    prompts = []
    for mode in modes:
        text, where = template_text(mode, prompts_dir)
        prompts.append((mode, where, fill(text, card, findings, user_input, where)))
    if model is None:
        from alignlab.evals.backends import make_model

        model = make_model(model_spec)
    out = []
    for mode, where, prompt in prompts:
        started = time.time()
        reply = model.chat(
            [[{"role": "user", "content": prompt}]], max_new_tokens=max_new_tokens, temperature=0.0, seed=0
        )[0]
        out.append(
            {
                "mode": mode,
                "title": MODES[mode],
                "model": model_spec,
                "template": where,
                "prompt": prompt,
                "text": reply,
                "generated": True,
                "seconds": round(time.time() - started, 2),
            }
        )
    return out
