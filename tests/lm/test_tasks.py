"""The generated question sets: verified answers, wrong stated beliefs, a stable train/test split."""

from __future__ import annotations

import re

from alignlab.lm import tasks


def test_items_are_many_unique_and_verified():
    items = tasks.make_items()
    assert len(items) >= 1500
    assert len({it.id for it in items}) == len(items)
    ops = {"plus": "+", "minus": "-", "times": "*"}
    for it in items:
        if it.kind == "arithmetic":
            a, op, b = re.fullmatch(r"What is (\d+) (plus|minus|times) (\d+)\?", it.question).groups()
            assert str(eval(f"{a}{ops[op]}{b}")) == it.answer
        if it.belief:
            assert it.belief != it.answer and it.belief in it.prompt and it.question in it.prompt
        else:
            assert it.prompt == it.question
    assert {it.kind for it in items} == {"arithmetic", "capital"}
    assert any(it.belief for it in items) and any(not it.belief for it in items)


def test_split_is_stable_and_disjoint():
    items = tasks.make_items()
    train, test = tasks.split(items, "train"), tasks.split(items, "test")
    assert len(train) + len(test) == len(items)
    assert 0.1 < len(test) / len(items) < 0.3
    assert not {i.id for i in train} & {i.id for i in test}
    fewer = tasks.make_items(n_arithmetic=100)
    same = {i.id: i.split for i in items}
    assert all(same[i.id] == i.split for i in fewer if i.id in same)


def test_sample_prompts_balances_belief_forms():
    items = tasks.split(tasks.make_items(), "test")
    chosen = tasks.sample_prompts(items, 40, seed=3)
    assert len(chosen) == 40 and len({c.id for c in chosen}) == 40
    assert 10 <= sum(bool(c.belief) for c in chosen) <= 30
    assert chosen == tasks.sample_prompts(items, 40, seed=3)
    assert "Apache" in tasks.LICENCE and tasks.SOURCE
