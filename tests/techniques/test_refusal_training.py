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


def test_learning_summary_reads_the_dpo_log():
    from alignlab.techniques.refusal_training import learning_summary

    log = [{"loss": 0.693, "rewards/margins": 0.0, "rewards/accuracies": 0.0, "step": 1},
           {"loss": 0.60, "rewards/margins": 0.2, "rewards/accuracies": 0.5, "step": 2},
           {"loss": 0.40, "rewards/margins": 0.8, "rewards/accuracies": 1.0, "step": 3},
           {"loss": 0.30, "rewards/margins": 1.2, "rewards/accuracies": 1.0, "step": 4},
           {"train_runtime": 12.0, "train_loss": 0.5}]  # TRL's closing entry has no margin: skipped
    s = learning_summary(log)
    assert s["logged_steps"] == 4
    assert s["loss_first"] == pytest.approx((0.693 + 0.60) / 2) and s["loss_last"] == pytest.approx(0.35)
    assert s["margin_first"] == pytest.approx(0.1) and s["margin_last"] == pytest.approx(1.0)
    assert s["accuracy_last"] == 1.0
    assert learning_summary([{"train_runtime": 1.0}]) == {}


def test_dpo_learns_the_pairs_on_the_tiny_model(tmp_path, monkeypatch):
    """With the default learning rate the DPO loss falls and the reward margin grows within a few steps (at the old
    2e-4 LoRA rate and 8 steps the embedded model's loss stayed at 0.69-0.72)."""
    from alignlab.lm.chat import LocalChatModel
    from alignlab.lm.testing import cached_tiny_llama

    tiny = LocalChatModel.load(str(cached_tiny_llama()))
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    tech = make_technique("refusal-training(families=authority, behaviours=4, steps=8, max_new_tokens=4, "
                          "max_length=96)")
    t = tech.apply(tiny).training
    assert t["logged_steps"] == 8
    assert t["loss_last"] < t["loss_first"] - 0.05 and t["margin_last"] > t["margin_first"] + 0.2, t
