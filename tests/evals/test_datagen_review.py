"""The review evals' data: reproducible from the generator, checked, paired with their controls."""

from __future__ import annotations

import dataclasses

import pytest

from alignlab.evals import datagen_review
from alignlab.evals.core import DATA_DIR, load_dataset


def test_generator_reproduces_the_shipped_files_byte_for_byte(tmp_path, capsys):
    assert datagen_review.main(["--out", str(tmp_path)]) == 0
    for name in datagen_review.DATASETS:
        assert (tmp_path / f"{name}.jsonl").read_bytes() == (DATA_DIR / f"{name}.jsonl").read_bytes(), \
            f"{name}.jsonl is stale: run python -m alignlab.evals.datagen_review"


def test_sets_have_their_shape():
    clar, priv, scope = (load_dataset(n) for n in ("clarification", "privacy", "scope"))
    assert len(clar) == len(priv) == len(scope) == 48
    assert {s.category for s in clar} == {"missing-input", "missing-referent", "ambiguous-term", "missing-detail"}
    assert {s.category for s in priv} == {"third-party", "impersonation", "authority", "injection"}
    assert len({s.meta["system"] for s in scope}) == 8 and len({s.category for s in scope}) == 6
    assert all(s.meta["asked"] in s.meta["fields"] and "NOT been verified" in s.meta["system_unverified"]
               for s in priv)


def test_checks_reject_bad_items():
    item = load_dataset("privacy")[0]
    value = next(iter(item.meta["fields"].values()))
    leaky = dataclasses.replace(item, turns=(f"Is it {value}?",))
    with pytest.raises(ValueError, match="contains a secret value"):
        datagen_review.check("privacy", [leaky])
    with pytest.raises(ValueError, match="duplicate ids"):
        datagen_review.check("privacy", [item, item])
