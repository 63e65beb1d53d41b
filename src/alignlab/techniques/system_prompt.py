"""A system prompt as a technique: the prompting baseline against sycophancy (Sharma et al. 2023,
"Towards Understanding Sycophancy in Language Models", arXiv:2310.13548; Wei et al. 2023, "Simple
synthetic data reduces sycophancy in large language models", arXiv:2308.03958)."""

from __future__ import annotations

import dataclasses
from typing import Any

from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.core.technique import Technique
from alignlab.evals.prompting import PROMPTS, SystemPromptModel, prompt_text


@dataclasses.dataclass(frozen=True)
class SystemPromptConfig(BaseConfig):
    prompt: str = "anti-sycophancy"
    """A named prompt (anti-sycophancy, helpful; evals/prompting.py PROMPTS) or the literal system-prompt text."""

    def __post_init__(self) -> None:
        if not self.prompt.strip():
            raise ConfigError(f"system-prompt: prompt must be non-empty; named prompts: {', '.join(PROMPTS)}, "
                              "or any literal text")


@register("technique", "system-prompt-v0")
class SystemPrompt(Technique):
    slot = "chat-model"
    title = "System prompt"
    summary = ("Every conversation the model sees starts with a fixed system message (added in front of an existing "
               "one), e.g. an instruction to answer from the facts and to keep a correct answer under pushback. The "
               "cheapest remedy for sycophancy and the baseline that training-time remedies are compared with.")
    source = ("Sharma et al. 2023, \"Towards Understanding Sycophancy in Language Models\", arXiv:2310.13548; "
              "Wei et al. 2023, \"Simple synthetic data reduces sycophancy in large language models\", "
              "arXiv:2308.03958")
    Config = SystemPromptConfig

    @property
    def text(self) -> str:
        """The system message this technique adds."""
        return prompt_text(self.config.prompt)

    def apply(self, model: Any, label: str | None = None, **context: Any) -> SystemPromptModel:
        """`model` with the system prompt; its name gets `#label` (default: this technique's canonical spec)."""
        return SystemPromptModel(model, self.text, label=label or self.spec)
