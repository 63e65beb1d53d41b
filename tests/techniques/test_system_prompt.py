"""The system-prompt technique: its config (named prompt or literal text), its spec, and the wrapper it returns."""

from __future__ import annotations

import pytest

from alignlab.core import registry
from alignlab.core.errors import ConfigError
from alignlab.core.technique import make_technique
from alignlab.evals.prompting import PROMPTS, SystemPromptModel


def test_registered_on_the_chat_model_slot_with_named_or_literal_prompts():
    cls = registry.get("technique", "system-prompt")
    assert cls.registered_name == "system-prompt-v0" and cls.slot == "chat-model"
    assert "2310.13548" in cls.source and "2308.03958" in cls.source
    default = make_technique("system-prompt")
    assert default.config.prompt == "anti-sycophancy" and default.text == PROMPTS["anti-sycophancy"]
    assert make_technique("system-prompt(prompt=anti-sycophancy)").spec == "system-prompt-v0"
    helpful = make_technique("system-prompt(prompt=helpful)")
    assert helpful.spec == "system-prompt-v0(prompt=helpful)" and helpful.text == PROMPTS["helpful"]
    assert make_technique("system-prompt(prompt=Answer in French.)").text == "Answer in French."
    with pytest.raises(ConfigError, match="non-empty"):
        make_technique("system-prompt(prompt=)")


def test_apply_wraps_any_chat_model():
    class Echo:
        name = "echo"
        supports_logprobs = False

        def chat(self, batch, max_new_tokens=64, temperature=0.0, seed=0):
            return [m[0]["content"] for m in batch]

    tech = make_technique("system-prompt(prompt=helpful)")
    model = tech.apply(Echo())
    assert isinstance(model, SystemPromptModel) and model.name == "echo#system-prompt-v0(prompt=helpful)"
    assert model.chat([[{"role": "user", "content": "hi"}]]) == [PROMPTS["helpful"]]
    assert tech.apply(Echo(), label="system=helpful").name == "echo#system=helpful"
