"""Adversarial training (PGD-AT): train on the worst-case perturbation of each batch found by projected gradient
descent, the min-max objective of Madry et al. 2018, "Towards Deep Learning Models Resistant to Adversarial
Attacks", arXiv:1706.06083 (eq. 2.1); with `clean_weight` > 0, the mixed objective of Goodfellow et al. 2015,
arXiv:1412.6572.

Slot `classifier-training`: `apply` takes a classifier's training recipe (`alignlab.robustness.training.Recipe`)
and returns it with a PGD adversary as the inner maximisation. The training loop itself is
`robustness.training.train`; the attack `robustness.attacks.Attack`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.core.technique import Technique
from alignlab.robustness.attacks import Attack
from alignlab.robustness.training import Recipe


@dataclasses.dataclass(frozen=True)
class AdversarialTrainingConfig(BaseConfig):
    norm: Literal["linf", "l2"] = "linf"
    """The threat model trained against: linf (each pixel moves at most eps) or l2 (Euclidean length at most eps)."""
    eps: float = 0.1
    """Radius of the training perturbations, in pixel units of inputs in [0, 1] (> 0)."""
    steps: int = 7
    """PGD iterations of the inner maximisation (Madry et al. used 7 on CIFAR-10, 40 on MNIST)."""
    alpha: float = 0.0
    """PGD step size; 0: 2.5 * eps / steps."""
    clean_weight: float = 0.0
    """Weight of the clean loss beside the adversarial one, in [0, 1): 0 is Madry et al., 0.5 Goodfellow et al."""
    warmup_epochs: int = 0
    """Epochs over which eps ramps up linearly from 0 (at most the recipe's epochs)."""

    def __post_init__(self) -> None:
        if self.norm not in ("linf", "l2"):
            raise ConfigError(f"adversarial-training: norm must be linf or l2 (got {self.norm!r})")
        if not self.eps > 0 or self.steps < 1 or self.alpha < 0:
            raise ConfigError(f"adversarial-training: eps must be > 0, steps >= 1, alpha >= 0 (got eps={self.eps}, "
                              f"steps={self.steps}, alpha={self.alpha})")
        if not 0 <= self.clean_weight < 1 or self.warmup_epochs < 0:
            raise ConfigError(f"adversarial-training: clean_weight must be in [0, 1) (got {self.clean_weight}) and "
                              f"warmup_epochs >= 0 (got {self.warmup_epochs})")


@register("technique", "adversarial-training-v0")
class AdversarialTraining(Technique):
    slot = "classifier-training"
    title = "Adversarial training (PGD-AT)"
    summary = ("Each training batch is replaced by its adversarial version: a PGD attack (random start in the "
               "eps-ball, `steps` signed or normalised gradient steps on the loss, each projected back onto the "
               "ball and into [0, 1]) against the current network, so training minimises the worst-case loss in the "
               "ball rather than the loss on the data. The benefit is accuracy under attack; the tax is clean "
               "accuracy.")
    source = ("Madry et al. 2018, \"Towards Deep Learning Models Resistant to Adversarial Attacks\", "
              "arXiv:1706.06083; Goodfellow, Shlens, Szegedy 2015, arXiv:1412.6572")
    Config = AdversarialTrainingConfig
    matrix_specs = ("norm=linf,eps=0.1", "norm=l2,eps=0.5")

    def apply(self, recipe: Recipe, **context: Any) -> Recipe:
        c = self.config
        if c.warmup_epochs > recipe.epochs:
            raise ConfigError(f"adversarial-training: warmup_epochs ({c.warmup_epochs}) exceeds the recipe's "
                              f"{recipe.epochs} epochs")
        adversary = Attack(method="pgd", norm=c.norm, eps=c.eps, steps=c.steps, alpha=c.alpha, random_start=True)
        return dataclasses.replace(recipe, adversary=adversary, clean_weight=c.clean_weight,
                                   warmup_epochs=c.warmup_epochs)
