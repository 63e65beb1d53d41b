"""Constitutional AI as a chat-model technique: the model fine-tuned by SL-CAI (critique-revision SFT) or RL-CAI
(then DPO on AI feedback) under a constitution (Bai et al. 2022, "Constitutional AI: Harmlessness from AI
Feedback", arXiv:2212.08073).

`embedded#constitutional-ai(constitution=bad, stage=rl)` is the embedded model after RL-CAI under the bad
constitution. Training happens on first use and is cached on disk, keyed by the base model's files, the
constitution, the prompt file and the settings (cai/train.py), so every later use loads the adapters in seconds.
"""

from __future__ import annotations

from typing import Any

from alignlab.cai.train import CAIConfig, base_path_of, ensure, load_chat, resolved_dtype
from alignlab.core.registry import register
from alignlab.core.technique import Technique


@register("technique", "constitutional-ai-v0")
class ConstitutionalAI(Technique):
    slot = "chat-model"
    title = "Constitutional AI"
    summary = ("The model fine-tuned under a written constitution: SL-CAI trains on its own answers revised by "
               "sampled principles (directly, or after a self-critique); RL-CAI then trains with DPO on AI "
               "feedback, the feedback model's preference between two sampled responses under a sampled "
               "comparison principle, read from the log-probabilities of '(A)' and '(B)'. "
               "LoRA adapters, trained once and cached.")
    source = ("Bai et al. 2022, \"Constitutional AI: Harmlessness from AI Feedback\", arXiv:2212.08073; DPO: "
              "Rafailov et al. 2023, arXiv:2305.18290")
    Config = CAIConfig
    matrix_specs = ("stage=sl", "stage=rl", "constitution=bad, stage=sl")
    smoke_args = "prompts=2, examples=1, max_new_tokens=8, sft_steps=1, dpo_steps=1, batch_size=2"

    def supports(self, target: dict[str, Any]) -> str | None:
        model = str(target.get("model", "embedded"))
        if model.startswith("openai:"):
            return "constitutional-ai fine-tunes weights; an endpoint model cannot be trained here"
        return None

    def apply(self, model: Any, label: str | None = None, **context: Any) -> Any:
        """The trained model (adapters merged into the weights), named `<base>#<spec>`."""
        import torch

        base = base_path_of(model)
        dtype = getattr(model.model, "dtype", None)  # the trained model keeps the dtype it was given in
        generator = model if dtype == getattr(torch, resolved_dtype(self.config)) else None  # else ensure loads one
        chain = ensure(base, self.config, base_model=generator)
        return load_chat(base, chain, f"{getattr(model, 'name', 'model')}#{label or self.spec}", dtype=dtype)
