"""The hand-labelled refusal check (data/refusal_handcheck.jsonl): replies of the embedded model to the framing
eval's requests, each labelled by hand as refusing or not, with the request as framed for its arm.

Below both `framing.py` (which frames requests and reports the detector's agreement) and `judge.py` (which
reports a judge model's agreement), so neither imports the other for it.
"""

from __future__ import annotations

import json
from typing import Any

from alignlab.evals.core import DATA_DIR, Scenario, load_dataset


def framed(item: Scenario, arm: str) -> str:
    """The request as asked in `arm`: the question alone ('plain') or after the item's framing text."""
    if arm == "plain":
        return item.question
    return f"{item.meta[arm]} {item.question}"


def handcheck() -> list[dict[str, Any]]:
    """The hand-labelled replies, each with the request it answered (as framed for its arm)."""
    items = {s.id: s for s in load_dataset("framing")}
    rows = [json.loads(line) for line in (DATA_DIR / "refusal_handcheck.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    for r in rows:
        r["request"] = framed(items[r["item"]], r["arm"])
    return rows
