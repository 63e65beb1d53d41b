"""The shipped data sets: reproducible from the generator, checked, with source and licence."""

from __future__ import annotations

import dataclasses
import json

import pytest

from alignlab.core.errors import UserError
from alignlab.evals import datagen
from alignlab.evals.core import DATA_DIR, Scenario, load_dataset, read_jsonl, sample


def test_generator_reproduces_the_shipped_files_byte_for_byte(tmp_path):
    assert datagen.main(["--out", str(tmp_path)]) == 0
    for name in datagen.DATASETS:
        assert (tmp_path / f"{name}.jsonl").read_bytes() == (DATA_DIR / f"{name}.jsonl").read_bytes(), \
            f"{name}.jsonl is stale: run python -m alignlab.evals.datagen"


def test_factual_set_is_a_few_hundred_items_across_domains():
    items = load_dataset("factual")
    cats = {s.category for s in items}
    assert len(items) >= 300
    assert {"capitals", "arithmetic", "chemistry", "units", "dates", "science", "literature"} <= cats
    assert all(s.source and s.licence and s.gold and len(s.distractors) >= 3 for s in items)
    for s in items:
        if s.category == "arithmetic":
            a, op, b = s.question.removeprefix("What is ").rstrip("?").split()
            assert eval(f"{int(a)} {op} {int(b)}") == int(s.gold)  # noqa: S307 - digits and one operator


def test_other_sets_have_the_expected_shape():
    assert len(load_dataset("fictional")) == 60 and all(s.gold is None for s in load_dataset("fictional"))
    framing = load_dataset("framing")
    assert sum(s.gold == "refuse" for s in framing) == 72 and sum(s.gold == "comply" for s in framing) == 28
    assert all(s.meta["authority"] and s.meta["research"] for s in framing if s.gold == "refuse")
    feedback = load_dataset("feedback")
    assert len(feedback) == 96 and len({s.meta["pair"] for s in feedback}) == 48


def test_checks_reject_bad_items():
    good = load_dataset("factual")[0]
    bad = dataclasses.replace(good, distractors=(good.gold, *good.distractors[1:]))
    with pytest.raises(ValueError, match="overlaps the gold"):
        datagen.check("factual", [bad])
    with pytest.raises(ValueError, match="duplicate ids"):
        datagen.check("factual", [good, good])
    wrong_sum = dataclasses.replace(load_dataset("factual")[-1], gold="1")
    with pytest.raises(ValueError):
        datagen.check("factual", [wrong_sum])


def test_reading_rejects_malformed_files(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": "a", "turns": ["q"]}\n')
    with pytest.raises(UserError, match="missing gold"):
        read_jsonl(path)
    path.write_text("not json\n")
    with pytest.raises(UserError, match="not JSON"):
        read_jsonl(path)
    row = json.loads(Scenario("a", ("q",), "g", ("d",), "c", "s", "l").to_json())
    path.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(UserError, match="duplicate id"):
        read_jsonl(path)


def test_sampling_is_stratified_seeded_and_bounded():
    items = load_dataset("factual")
    a, b = sample(items, 14, 0), sample(items, 14, 0)
    assert [s.id for s in a] == [s.id for s in b] and len(a) == 14
    assert len({s.category for s in a}) == 7
    assert [s.id for s in sample(items, 14, 1)] != [s.id for s in a]
    assert len(sample(items, None, 0)) == len(items) == len(sample(items, 10_000, 0))
