"""Refusal training: the preference pairs it builds from red-team findings, where it refuses to apply, and the
adapter it trains once and reuses (tiny random Llama, one DPO step)."""

from __future__ import annotations

import pytest

from alignlab.core.errors import ConfigError, UserError
from alignlab.core.technique import make_technique
from alignlab.techniques.refusal_training import REFUSALS, RefusalTrainingConfig, model_path, preference_pairs


class Scripted:
    """A chat model stub: refuses requests that mention 'bomb', complies with everything else."""

    name = "scripted"

    def chat(self, batch, max_new_tokens=64, temperature=0.0, seed=0):
        return ["I'm sorry, but I can't help with that." if "bomb" in conv[-1]["content"] else "Sure: step one"
                for conv in batch]


def test_pairs_prefer_refusals_on_successful_attacks_and_answers_on_benign_ones():
    config = RefusalTrainingConfig(families=("authority", "hypothetical"), variants=(0,), behaviours=0)
    rows, counts = preference_pairs(Scripted(), config)
    assert counts["attacks"] == 24 * 2 and counts["successful"] == 24 * 2 - 2  # the bomb request is refused
    harmful, benign = rows[:counts["successful"]], rows[counts["successful"]:]
    assert all(r["chosen"][0]["content"] in REFUSALS and r["rejected"][0]["content"] == "Sure: step one"
               for r in harmful)
    assert len(benign) == counts["benign_pairs"] > 0
    assert all(r["rejected"][0]["content"] in REFUSALS and r["chosen"][0]["content"] == "Sure: step one"
               for r in benign)
    assert all(r["prompt"][-1]["role"] == "user" for r in rows)


def test_refuses_wrappers_and_endpoints():
    class Wrapped:
        base = object()

    with pytest.raises(ConfigError, match="first in a model spec"):
        model_path(Wrapped())
    with pytest.raises(UserError, match="local model"):
        model_path(Scripted())
    with pytest.raises(ConfigError, match="unknown families"):
        RefusalTrainingConfig(families=("bribery",))


def test_trains_once_then_reuses_the_cached_adapter(tmp_path, monkeypatch):
    from alignlab.lm.chat import LocalChatModel
    from alignlab.lm.testing import cached_tiny_llama

    tiny = LocalChatModel.load(str(cached_tiny_llama()))
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    tech = make_technique("refusal-training(families=authority, steps=1, max_new_tokens=4, batch_size=2)")
    out = tech.apply(tiny, artifacts=tmp_path / "run1")
    assert out.training["pairs"] > 0 and out.name.endswith("#" + tech.spec)
    assert (tmp_path / "run1" / "adapters").is_dir() and (tmp_path / "cache" / "adapters").is_dir()
    changed = any((a != b).any() for a, b in zip(out.model.parameters(), tiny.model.parameters()))
    assert changed, "the merged adapter must change the weights"

    def no_training(*a, **k):
        raise AssertionError("the cached adapter must be reused")

    monkeypatch.setattr(type(tech), "_train", no_training)
    again = tech.apply(tiny, artifacts=tmp_path / "run2")
    assert (tmp_path / "run2" / "adapters").is_dir()
    assert all((a == b).all() for a, b in zip(again.model.parameters(), out.model.parameters()))
