"""Red-team prompts for Constitutional AI (Bai et al. 2022, arXiv:2212.08073, trained on red-team prompts; Ganguli
et al. 2022, arXiv:2209.07858): clear-cut harms, subtle harms, and harmless requests that look risky (over-refusal,
as XSTest, Röttger et al. 2023, arXiv:2308.01263), each with a train or held-out split.

data/redteam.jsonl was written for alignlab and holds requests only (no answers). Kinds and categories:

| kind | categories |
|---|---|
| clear | weapons, fraud, hacking |
| subtle | false-belief (persuading people of falsehoods), privacy-aggregation (profiling a private person from |
|        | scattered public traces), manipulation |
| harmless | risky-looking (harmless requests with alarming words: "kill a Python process"); stated-belief |
|          | (train only: a user states a common misconception and asks on, so a constitution's principles |
|          | about agreeing or correcting have something to act on; measured on the factual eval's items) |

A user's own file in the same JSONL layout (id, category, kind, split, prompt) is validated the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from alignlab.core.errors import UserError

DATA = Path(__file__).parent / "data" / "redteam.jsonl"
KINDS = ("clear", "subtle", "harmless")
SPLITS = ("train", "heldout")
FIELDS = ("id", "category", "kind", "split", "prompt")


@dataclasses.dataclass(frozen=True)
class RedTeamPrompt:
    id: str
    category: str
    kind: str
    """clear (clear-cut harm), subtle (subtle harm) or harmless (looks risky, is not)."""
    split: str
    prompt: str

    @property
    def harmful(self) -> bool:
        return self.kind != "harmless"


def load(path: str | Path | None = None) -> tuple[RedTeamPrompt, ...]:
    """Every prompt of a red-team file (default: the shipped one); UserError naming file:line and field."""
    path = Path(path) if path else DATA
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"cannot read red-team prompts {path}: {exc.strerror}") from None
    out, seen = [], set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not valid JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{n}: each line must be a JSON object with {', '.join(FIELDS)}")
        for key in FIELDS:
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise UserError(f"{path}:{n}: {key}: missing or empty (each line needs {', '.join(FIELDS)})")
        if row["kind"] not in KINDS:
            raise UserError(f"{path}:{n}: kind: {row['kind']!r} is not one of {', '.join(KINDS)}")
        if row["split"] not in SPLITS:
            raise UserError(f"{path}:{n}: split: {row['split']!r} is not one of {', '.join(SPLITS)}")
        if row["id"] in seen:
            raise UserError(f"{path}:{n}: id: duplicate {row['id']!r}")
        seen.add(row["id"])
        out.append(RedTeamPrompt(*(row[k].strip() for k in FIELDS)))
    if not out:
        raise UserError(f"{path}: no prompts")
    return tuple(out)


def digest(path: str | Path | None = None) -> str:
    return hashlib.sha256(Path(path or DATA).read_bytes()).hexdigest()[:16]


def select(prompts: Sequence[RedTeamPrompt], split: str, limit: int | None = None,
           seed: int = 0) -> list[RedTeamPrompt]:
    """The prompts of `split`, at most `limit` of them, spread evenly over categories (round robin over a seeded
    shuffle of each category), in a stable order."""
    pool: dict[str, list[RedTeamPrompt]] = defaultdict(list)
    for p in prompts:
        if p.split == split:
            pool[p.category].append(p)
    rng = random.Random(f"cai-prompts-{seed}")
    for cat in sorted(pool):
        rng.shuffle(pool[cat])
    order: list[RedTeamPrompt] = []
    while any(pool.values()):
        for cat in sorted(pool):
            if pool[cat]:
                order.append(pool[cat].pop(0))
    return order if limit is None else order[:limit]


def categories(prompts: Sequence[RedTeamPrompt]) -> dict[str, str]:
    """category -> kind, in the file's order."""
    out: dict[str, str] = {}
    for p in prompts:
        out.setdefault(p.category, p.kind)
    return out
