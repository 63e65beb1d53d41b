"""Hand-labelled check sets of the review evals (clarification, privacy, scope): the embedded model's replies, each
labelled by a person, and the agreement of an eval's deterministic scorer with those labels (agreement and Cohen's
kappa with bootstrap intervals, on every row and on the held-out rows alone; Cohen 1960; the judge-agreement
practice of Zheng et al. 2023, arXiv:2306.05685).

A row is {id, item, arm, reply, label, split, note, source, licence}: `label` is the person's verdict on the reply
(asks for clarification / leaks a record value / declines), `split` is 'dev' (rows the scorer's rules were written
against) or 'fresh' (rows labelled after the rules were frozen, never used to change them: the held-out check).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Callable

from alignlab.evals.core import DATA_DIR, Scenario, load_dataset
from alignlab.evals.judge import agreement, kappa
from alignlab.evals.stats import Estimate, bootstrap_mean, bootstrap_stat


@lru_cache(maxsize=None)
def labelled(name: str) -> tuple[dict[str, Any], ...]:
    """The hand-labelled rows of data/NAME_handcheck.jsonl."""
    path = DATA_DIR / f"{name}_handcheck.jsonl"
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        r = json.loads(line)
        if not isinstance(r.get("label"), bool) or r.get("split") not in ("dev", "fresh"):
            raise ValueError(f"{path.name}:{n}: needs a true/false 'label' and a 'split' of dev or fresh")
        rows.append(r)
    return tuple(rows)


def verdicts(name: str, decide: Callable[[dict[str, Any], Scenario], bool]) -> tuple[list[bool], list[bool], list[str]]:
    """Hand labels, the scorer's verdicts (`decide(row, item)`, the item from the shipped set) and each row's split."""
    items = {s.id: s for s in load_dataset(name)}
    rows = labelled(name)
    return ([r["label"] for r in rows], [bool(decide(r, items[r["item"]])) for r in rows], [r["split"] for r in rows])


def check_metrics(name: str, decide: Callable[[dict[str, Any], Scenario], bool], seed: int = 0
                  ) -> dict[str, Estimate]:
    """handcheck_agreement / handcheck_kappa of the scorer against the hand labels, and the same on the fresh rows
    alone (*_heldout), with bootstrap intervals over rows (computed once per scorer and seed: every run reports
    them)."""
    return dict(_check_metrics(name, decide, seed))


@lru_cache(maxsize=None)
def _check_metrics(name: str, decide: Callable[[dict[str, Any], Scenario], bool], seed: int
                   ) -> tuple[tuple[str, Estimate], ...]:
    hand, auto, split = verdicts(name, decide)
    m: dict[str, Estimate] = {}
    for suffix, keep in (("", [True] * len(hand)), ("_heldout", [s == "fresh" for s in split])):
        h = [float(x) for x, k in zip(hand, keep) if k]
        a = [float(x) for x, k in zip(auto, keep) if k]
        m[f"handcheck_agreement{suffix}"] = bootstrap_mean([float(x == y) for x, y in zip(h, a)], seed,
                                                           f"hand{suffix}")
        m[f"handcheck_kappa{suffix}"] = bootstrap_stat(kappa, [h, a], seed, f"hand-kappa{suffix}")
    return tuple(m.items())


def summary(name: str, decide: Callable[[dict[str, Any], Scenario], bool]) -> dict[str, dict[str, float]]:
    """agreement() (n, agreement, kappa, confusion counts) on all rows, the dev rows and the fresh rows."""
    hand, auto, split = verdicts(name, decide)
    out = {"all": agreement(hand, auto)}
    for part in ("dev", "fresh"):
        idx = [i for i, s in enumerate(split) if s == part]
        if idx:
            out[part] = agreement([hand[i] for i in idx], [auto[i] for i in idx])
    return out
