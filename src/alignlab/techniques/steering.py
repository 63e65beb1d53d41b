"""A steering vector as a technique: contrastive activation addition against sycophancy (Rimsky et al. 2023,
"Steering Llama 2 via Contrastive Activation Addition", arXiv:2312.06681; Turner et al. 2023, "Activation
Addition: Steering Language Models Without Optimization", arXiv:2308.10248)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError, UserError
from alignlab.core.registry import register
from alignlab.core.technique import Technique


@dataclasses.dataclass(frozen=True)
class SteeringConfig(BaseConfig):
    layer: int = 10
    """Decoder layer (0-based) whose output (`resid_post.LAYER`) gets the vector; about a third of the depth is
    where CAA steers best (layer 13 of 32 in Rimsky et al.; 10 of SmolLM2-135M's 30)."""
    multiplier: float = -128.0
    """Times the vector added at every position: negative steers away from the sycophantic answer, positive
    towards it, 0 leaves the model unchanged. The letter-balanced vector is small against the residual
    stream, so an addition that changes anything needs |multiplier| near 100 (the sweep in docs/interp.md)."""
    vector: Literal["caa", "random"] = "caa"
    """caa: the mean difference of activations (sycophantic minus honest A/B answer) over the training split;
    random: a seeded random direction of the same norm at the same layer (the control)."""
    seed: int = 0
    """Seed of the random direction (vector=random)."""
    items: int = 0
    """Training items whose A/B pairs make the vector (the first ITEMS of the training split); 0: all of them."""

    def __post_init__(self) -> None:
        if self.layer < 0:
            raise ConfigError(f"steering: layer must be >= 0 (got {self.layer})")
        if self.items < 0:
            raise ConfigError(f"steering: items must be >= 0 (0 = the whole training split; got {self.items})")
        if self.vector not in ("caa", "random"):
            raise ConfigError(f"steering: vector must be caa or random (got {self.vector!r})")
        if not -1e4 < self.multiplier < 1e4:
            raise ConfigError(f"steering: multiplier must be a finite number (got {self.multiplier})")


@register("technique", "steering-v0")
class Steering(Technique):
    slot = "chat-model"
    title = "Steering vector (contrastive activation addition)"
    summary = ("Adds a fixed vector to the residual stream at one layer, at every position of every forward while "
               "the model reads and generates. The vector is the mean difference of activations at the answer "
               "letter between sycophantic and honest completions of A/B questions where the user suggests a wrong "
               "answer, built from the training half of the factual items only (cached on disk per model and data). "
               "A negative multiplier steers away from agreeing with the user; `vector=random` is the control of "
               "equal norm. Needs a local Hugging Face model (its weights).")
    source = ("Rimsky et al. 2023, \"Steering Llama 2 via Contrastive Activation Addition\", arXiv:2312.06681; "
              "Turner et al. 2023, \"Activation Addition\", arXiv:2308.10248")
    Config = SteeringConfig
    matrix_specs = ("multiplier=-128", "multiplier=-128, vector=random")
    smoke_args = "items=4"

    def supports(self, target: dict[str, Any]) -> str | None:
        model = str(target.get("model", ""))
        if model.startswith("openai:"):
            return "steering needs a local model's weights, not an endpoint"
        return None

    def vector(self, chat_model: Any) -> tuple[Any, dict[str, Any]]:
        """The vector this technique adds to `chat_model` (a LocalChatModel), and what it is: the layer's CAA
        vector or a random one of its norm, its norm, the residual norm there, whether it came from the cache."""
        from alignlab.interp import caa

        items = caa.factual_split("train")[:self.config.items] if self.config.items else None
        found = caa.load_or_train(chat_model.model, chat_model.tokenizer, chat_model.render, items)
        layers = found["vectors"].shape[0]
        if self.config.layer >= layers:
            raise ConfigError(f"steering: layer {self.config.layer} is past the model's last layer ({layers - 1})")
        vec = found["vectors"][self.config.layer]
        if self.config.vector == "random":
            vec = caa.random_like(vec, self.config.seed)
        info = {"layer": self.config.layer, "norm": float(vec.norm()), "pairs": int(found["pairs"]),
                "resid_norm": float(found["resid_norm"][self.config.layer]), "cached": bool(found["cached"])}
        return vec, info

    def apply(self, model: Any, label: str | None = None, **context: Any) -> Any:
        """`model` (a local chat model) with the vector added; its name gets `#label` (default: the canonical
        spec). Put steering before a system prompt in a model spec: `embedded#steering(...)#system=...`."""
        from alignlab.interp import caa
        from alignlab.lm.chat import LocalChatModel

        if not isinstance(model, LocalChatModel):
            raise UserError(f"steering needs a local Hugging Face chat model (got {getattr(model, 'name', model)!r}): "
                            "use a local base (embedded, a model folder) and put steering first after it, e.g. "
                            "embedded#steering(layer=10, multiplier=-128)#system=anti-sycophancy")
        vec, info = self.vector(model)
        out = caa.steered_chat_model(model, vec, self.config.layer, self.config.multiplier, label or self.spec)
        out.steering.update(info)
        return out
