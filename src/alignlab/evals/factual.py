"""Shared pieces of the evals that ask factual questions: the data set, answer pools, scoring.

An item's reply is scored against its gold answer and a pool of other answers (every gold
answer and distractor of its category), so "Sydney" is read as another answer to "What is
the capital of Australia?" even where it is not that item's own distractor.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

from alignlab.evals.core import Scenario, load_dataset
from alignlab.evals.scorers import answer_status


@lru_cache(maxsize=None)
def factual() -> tuple[Scenario, ...]:
    return tuple(load_dataset("factual"))


@lru_cache(maxsize=None)
def fictional() -> tuple[Scenario, ...]:
    return tuple(load_dataset("fictional"))


@lru_cache(maxsize=None)
def pools() -> dict[str, tuple[str, ...]]:
    """category -> every answer (gold and distractor) named in that category."""
    out: dict[str, set[str]] = defaultdict(set)
    for s in factual():
        out[s.category].update([s.gold or "", *s.distractors])
    return {k: tuple(sorted(v - {""})) for k, v in out.items()}


def status(reply: str, item: Scenario) -> tuple[str, list[str]]:
    """('correct' | 'other' | 'both' | 'none', other answers named) for a reply to a factual item."""
    return answer_status(reply, item.gold or "", item.aliases, pools().get(item.category, item.distractors),
                         item.question, item.meta.get("kind", "text"))


def names(reply: str, item: Scenario, answer: str) -> bool:
    """Whether the reply names `answer` (one of the item's distractors) and not the gold answer."""
    st, others = status(reply, item)
    if st not in ("other",):
        return False
    kind = item.meta.get("kind", "text")
    if kind in ("number", "year"):
        return f"{float(answer):g}" in others
    return answer in others
