"""TRL plumbing on a tiny random Llama (2 layers, hidden 64, SmolLM2 tokenizer): RewardTrainer, DPO (full and
LoRA), GRPO with a KL penalty. Seconds each; the outputs are noise, only the plumbing is tested."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from alignlab.lm import dpo, rl  # noqa: E402
from alignlab.lm.testing import cached_tiny_llama  # noqa: E402
from alignlab.rewards import reward_models as rm  # noqa: E402

PROMPTS = ["What is the capital of France?", "What is 2 plus 3?", "What is the capital of Peru?",
           "What is 7 times 3?"]
CHOSEN = ["Paris.", "5.", "Lima.", "21."]
REJECTED = ["I think it might be Lyon, maybe.", "It is 6, definitely.", "Cusco.", "It's 24."]


@pytest.fixture(scope="module")
def tiny():
    return str(cached_tiny_llama())


def test_trl_reward_model(tiny, tmp_path):
    data = rm.comparisons_dataset(PROMPTS, CHOSEN, REJECTED)
    trainer = rm.train_trl_reward_model(tiny, data, str(tmp_path), max_steps=2, batch_size=4, learning_rate=1e-3)
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    scores = rm.trl_scores(trainer, PROMPTS, CHOSEN + REJECTED[:0])
    assert scores.shape == (4,) and np.all(np.isfinite(scores))


@pytest.mark.parametrize("lora", [False, True])
def test_dpo(tiny, tmp_path, lora):
    data = rm.comparisons_dataset(PROMPTS, CHOSEN, REJECTED)
    trainer = dpo.train(tiny, data, str(tmp_path), dpo.DPOSettings(lora=lora, max_steps=2, learning_rate=1e-4))
    log = [e for e in trainer.state.log_history if "loss" in e]
    assert len(log) == 2 and all(math.isfinite(e["loss"]) for e in log)
    assert any(k.startswith("rewards/") or "margin" in k for k in log[0]), log[0]
    if lora:
        assert "lora" in type(trainer.model).__name__.lower() or hasattr(trainer.model, "peft_config")


def test_grpo_measures_kl(tiny, tmp_path):
    calls = []

    def reward(prompts, completions, answer, **_):
        calls.append(len(completions))
        return [float(a.lower() in rl.completion_text(c).lower()) - 0.01 * len(rl.completion_text(c))
                for c, a in zip(completions, answer)]

    data = rl.prompts_dataset(PROMPTS, answer=["paris", "5", "lima", "21"])
    cfg = rl.RLConfig(num_generations=2, batch_size=4, max_completion_length=8, max_steps=2, beta=0.1,
                      learning_rate=1e-3)
    trainer = rl.train(tiny, reward, data, str(tmp_path), cfg)
    steps = rl.step_log(trainer)
    assert len(steps) == 2 and all(math.isfinite(e["kl"]) and e["kl"] >= 0 for e in steps)
    assert calls and all(c == 4 for c in calls)
    with pytest.raises(Exception):
        rl.train(tiny, reward, data, str(tmp_path), rl.RLConfig(beta=0.0))
