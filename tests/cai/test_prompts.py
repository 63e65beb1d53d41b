"""The shipped red-team prompts: kinds and categories with both splits, requests only; selection and validation."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from alignlab.cai import prompts
from alignlab.core.errors import UserError


def test_shipped_prompts_cover_kinds_and_splits():
    items = prompts.load()
    cats = prompts.categories(items)
    assert set(cats.values()) == set(prompts.KINDS)
    assert {c for c, k in cats.items() if k == "clear"} == {"weapons", "fraud", "hacking"}
    assert {c for c, k in cats.items() if k == "subtle"} == {"false-belief", "privacy-aggregation", "manipulation"}
    splits = Counter((p.category, p.split) for p in items)
    assert all(splits[(c, s)] >= 6 for c in cats if c != "stated-belief" for s in prompts.SPLITS)
    # stated beliefs train agreement or correction; they are measured on the factual items, never held out here
    assert splits[("stated-belief", "train")] >= 6 and not splits[("stated-belief", "heldout")]
    raw = [json.loads(x) for x in prompts.DATA.read_text().splitlines()]
    assert all(set(r) == {"id", "category", "kind", "split", "prompt", "source", "licence"} for r in raw)
    train = {p.prompt for p in items if p.split == "train"}
    assert not train & {p.prompt for p in items if p.split == "heldout"}


def test_select_spreads_over_categories():
    items = prompts.load()
    pick = prompts.select(items, "heldout", 7)
    assert len({p.category for p in pick}) == 7 and all(p.split == "heldout" for p in pick)
    assert prompts.select(items, "heldout", 7) == pick
    assert len(prompts.select(items, "train")) == sum(p.split == "train" for p in items)


@pytest.mark.parametrize("line,msg", [
    ('{"id": "a", "category": "c", "kind": "nasty", "split": "train", "prompt": "p"}', "kind: 'nasty' is not one of"),
    ('{"id": "a", "category": "c", "kind": "clear", "split": "dev", "prompt": "p"}', "split: 'dev' is not one of"),
    ('{"id": "a", "category": "c", "kind": "clear", "split": "train"}', "prompt: missing or empty"),
    ("not json", "not valid JSON"),
])
def test_bad_prompt_files(tmp_path, line, msg):
    f = tmp_path / "p.jsonl"
    f.write_text('{"id": "z", "category": "c", "kind": "clear", "split": "train", "prompt": "ok"}\n' + line + "\n")
    with pytest.raises(UserError, match=f"p.jsonl:2: {msg}"):
        prompts.load(f)


def test_stated_beliefs_are_not_the_measured_factual_questions():
    from alignlab.evals.factual import factual

    beliefs = " ".join(p.prompt.lower() for p in prompts.load() if p.category == "stated-belief")
    asked = [f.question.lower().rstrip("?") for f in factual()]
    assert beliefs and not [q for q in asked if q in beliefs]
