"""Steering by a sparse-autoencoder feature's decoder direction as a technique (Templeton et al. 2024, "Scaling
Monosemanticity", transformer-circuits.pub, feature steering; Bricken et al. 2023, "Towards Monosemanticity";
sycophancy after Sharma et al. 2023, arXiv:2310.13548)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError, UserError
from alignlab.core.registry import register
from alignlab.core.technique import Technique


@dataclasses.dataclass(frozen=True)
class SAESteeringConfig(BaseConfig):
    layer: int = 9
    """Decoder layer (0-based) whose output (`resid_post.LAYER`) the SAE reads and the direction is added to (9: the
    sae-features experiment's quick layer)."""
    feature: int = -1
    """SAE feature whose decoder direction is added; -1: the feature whose activation at the answer letter is most
    correlated with the sycophantic completion over the A/B pairs of the TRAINING half of the factual items."""
    multiplier: float = -0.25
    """Size of the addition as a multiple of the mean residual norm at the layer (over the SAE's training tokens):
    the added vector is multiplier x resid_norm x the unit decoder direction. Negative: away from the feature
    (away from sycophancy for the auto feature); 0 leaves the model unchanged."""
    direction: Literal["feature", "random"] = "feature"
    """feature: the chosen feature's decoder direction; random: a seeded random direction of the same norm at the
    same layer (the control: does the direction matter, or only the size of the addition?)."""
    control_seed: int = 0
    """Seed of the random direction (direction=random)."""
    items: int = 0
    """Training items whose A/B pairs rank the features (the first ITEMS of the training split); 0: all of them."""
    expansion: int = 4
    """SAE features per residual dimension."""
    l1: float = 5.0
    """SAE L1 coefficient (normalized activations, SAELens' scale)."""
    steps: int = 300
    """SAE optimizer steps (the SAE is trained once per model and settings, then loaded from the cache)."""
    batch_tokens: int = 512
    """SAE tokens per step."""
    texts: int = 200
    """Corpus training texts the SAE is trained on (interp/sae.py corpus); 0: all of them."""
    seed: int = 0
    """Seed of the SAE's initialisation and batch order."""

    def __post_init__(self) -> None:
        if self.layer < 0:
            raise ConfigError(f"sae-steering: layer must be >= 0 (got {self.layer})")
        if self.feature < -1:
            raise ConfigError(f"sae-steering: feature must be -1 (auto) or a feature index >= 0 (got {self.feature})")
        if not (math.isfinite(self.multiplier) and abs(self.multiplier) <= 10):
            raise ConfigError(f"sae-steering: multiplier must be a finite number in [-10, 10] (times the residual "
                              f"norm; got {self.multiplier})")
        for k in ("expansion", "steps", "batch_tokens"):
            if getattr(self, k) < 1:
                raise ConfigError(f"sae-steering: {k} must be >= 1 (got {getattr(self, k)})")
        if self.direction not in ("feature", "random"):
            raise ConfigError(f"sae-steering: direction must be feature or random (got {self.direction!r})")
        if self.items < 0:
            raise ConfigError(f"sae-steering: items must be >= 0 (0 = the whole training split; got {self.items})")
        if self.texts < 0 or self.texts in (1, 2, 3):
            raise ConfigError(f"sae-steering: texts must be 0 (the whole corpus) or >= 4 (got {self.texts})")
        if not (math.isfinite(self.l1) and self.l1 >= 0):
            raise ConfigError(f"sae-steering: l1 must be a finite number >= 0 (got {self.l1})")

    def sae_settings(self) -> Any:
        from alignlab.interp.sae import SAESettings

        return SAESettings(layer=self.layer, expansion=self.expansion, l1=self.l1, steps=self.steps,
                           batch_tokens=self.batch_tokens, seed=self.seed)


@register("technique", "sae-steering-v0")
class SAESteering(Technique):
    slot = "chat-model"
    title = "SAE feature steering"
    summary = ("Adds one sparse-autoencoder feature's decoder direction to the residual stream at one layer, at every "
               "position of every forward. The SAE is trained on the project's own text corpus at that layer (cached "
               "on disk per model and settings); the feature, unless named, is the one whose activation at the answer "
               "letter correlates most with the sycophantic completion of A/B questions where the user suggests a "
               "wrong answer, over the training half of the factual items only. The size is a multiple of the "
               "layer's mean residual norm; negative steers away from the feature. Needs a local Hugging Face model.")
    source = ("Templeton et al. 2024, \"Scaling Monosemanticity\" (transformer-circuits.pub), feature steering; "
              "Bricken et al. 2023, \"Towards Monosemanticity\"; Sharma et al. 2023, arXiv:2310.13548")
    Config = SAESteeringConfig
    matrix_specs = ("multiplier=-0.25", "multiplier=-0.25, direction=random")
    smoke_args = "items=4, steps=10, texts=16, batch_tokens=64, expansion=1"

    def supports(self, target: dict[str, Any]) -> str | None:
        model = str(target.get("model", ""))
        if model.startswith("openai:"):
            return "SAE steering needs a local model's weights, not an endpoint"
        return None

    def vector(self, chat_model: Any) -> tuple[Any, dict[str, Any]]:
        """The feature's decoder direction in residual units for `chat_model` (a LocalChatModel), and what was
        chosen: layer, feature, its correlation with the sycophantic completion on the training pairs, the
        direction's norm, the residual norm, whether the SAE and the ranking came from the cache."""
        from alignlab.interp import caa
        from alignlab.interp import sae_steering as SS
        from alignlab.interp.hooks import n_layers

        c = self.config
        layers = n_layers(chat_model.model)
        if c.layer >= layers:
            raise ConfigError(f"sae-steering: layer {c.layer} is past the model's last layer ({layers - 1})")
        hidden = getattr(getattr(chat_model.model, "config", None), "hidden_size", None)
        d_sae = c.expansion * hidden if isinstance(hidden, int) else None
        if d_sae is not None and c.feature >= d_sae:  # said before minutes of SAE training, not after
            raise ConfigError(f"sae-steering: feature must be -1 (auto) or in 0..{d_sae - 1} (got {c.feature})")
        sae, sae_info = SS.load_or_train_sae(chat_model.model, chat_model.tokenizer, c.sae_settings(), c.texts)
        d_sae = sae.W_dec.shape[0]
        if c.feature >= d_sae:
            raise ConfigError(f"sae-steering: feature must be -1 (auto) or in 0..{d_sae - 1} (got {c.feature})")
        items = caa.factual_split("train")
        items = items[:c.items] if c.items else items
        ranked = SS.sycophancy_correlations(chat_model.model, chat_model.tokenizer, chat_model.render, sae, c.layer,
                                            sae_info["key"], items)
        r = ranked["r"]
        feature = int(r.argmax()) if c.feature == -1 else c.feature
        vec = SS.decoder_direction(sae, feature)
        if c.direction == "random":
            vec = caa.random_like(vec, c.control_seed)
        info = {"layer": c.layer, "feature": feature, "auto": c.feature == -1, "direction": c.direction,
                "correlation": float(r[feature]),
                "norm": float(vec.norm()), "resid_norm": SS.resid_norm(sae), "d_sae": int(d_sae),
                "pairs": int(ranked["pairs"]), "mean_act_syc": float(ranked["mean_syc"][feature]),
                "mean_act_honest": float(ranked["mean_honest"][feature]), "sae_cached": bool(sae_info["cached"]),
                "ranking_cached": bool(ranked["cached"])}
        return vec, info

    def apply(self, model: Any, label: str | None = None, **context: Any) -> Any:
        """`model` (a local chat model) with multiplier x resid_norm x the feature's unit decoder direction added
        at `resid_post.LAYER`; its name gets `#label` (default: the canonical spec). Put it first after the base
        model in a spec: `embedded#sae-steering(...)#system=...`."""
        from alignlab.interp import caa
        from alignlab.lm.chat import LocalChatModel

        if not isinstance(model, LocalChatModel):
            raise UserError(f"sae-steering needs a local Hugging Face chat model (got "
                            f"{getattr(model, 'name', model)!r}): use a local base (embedded, a model folder) and "
                            "put sae-steering first after it, e.g. embedded#sae-steering(multiplier=-0.25)")
        vec, info = self.vector(model)
        added = self.config.multiplier * info["resid_norm"]
        scale = added / info["norm"] if info["norm"] > 0 else 0.0
        out = caa.steered_chat_model(model, vec, self.config.layer, scale, label or self.spec)
        out.steering.update(info)
        out.steering.update(multiplier=self.config.multiplier, vector_multiplier=scale, added_norm=abs(added))
        return out
