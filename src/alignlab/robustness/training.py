"""Training recipes for small classifiers: standard empirical risk minimisation, or the min-max of adversarial
training, an inner PGD maximisation per batch (Madry et al. 2018, arXiv:1706.06083, eq. 2.1), optionally mixed
with the clean loss (Goodfellow et al. 2015, arXiv:1412.6572, eq. 3)."""

from __future__ import annotations

import dataclasses
from typing import Any

from alignlab.core.errors import ConfigError
from alignlab.robustness.attacks import Attack


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a classifier is trained: the settings of the `classifier-training` technique slot."""

    epochs: int = 30
    """Passes over the training set."""
    lr: float = 3e-3
    """Adam's learning rate."""
    batch: int = 64
    """Mini-batch size."""
    weight_decay: float = 0.0
    """Adam's L2 weight decay."""
    adversary: Attack | None = None
    """The inner maximisation: each batch is replaced by its adversarial version under this attack (None: standard
    training)."""
    clean_weight: float = 0.0
    """Weight of the clean loss beside the adversarial one, in [0, 1): 0 is Madry et al.'s objective, 0.5
    Goodfellow et al.'s."""
    warmup_epochs: int = 0
    """Epochs over which the adversary's eps grows linearly from 0 to its value (a ramp that keeps a small network
    from collapsing to a constant at the start of adversarial training)."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1 or not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError(f"training recipe {self}: epochs, batch >= 1, lr > 0, weight_decay >= 0")
        if not 0 <= self.clean_weight < 1 or not 0 <= self.warmup_epochs <= self.epochs:
            raise ConfigError("training recipe: clean_weight must be in [0, 1), warmup_epochs in [0, epochs]")


def train(model: Any, x: Any, y: Any, recipe: Recipe, seed: int = 0) -> Any:
    """Train `model` with Adam on (x, y) under `recipe`; returns it in eval mode. The batch order depends on the
    seed only, so a standard and an adversarial run with one seed see the same batches (with no adversary this is
    `alignlab.vision.digits.fit` exactly). The attacks' random starts come from their own stream."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    g_attack = torch.Generator().manual_seed(seed + 7919)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    adversary = recipe.adversary
    model.train()
    for epoch in range(recipe.epochs):
        attack = adversary
        if adversary is not None and epoch < recipe.warmup_epochs:
            attack = dataclasses.replace(adversary, eps=adversary.eps * (epoch + 1) / (recipe.warmup_epochs + 1))
        for idx in torch.randperm(len(xt), generator=g).split(recipe.batch):
            xb, yb = xt[idx], yt[idx]
            if attack is None:
                loss = F.cross_entropy(model(xb), yb)
            else:
                model.eval()  # the attack sees the deployed network (matters for dropout / batch norm)
                adv = attack(model, xb, yb, g_attack)
                model.train()
                loss = (1 - recipe.clean_weight) * F.cross_entropy(model(adv), yb)
                if recipe.clean_weight:
                    loss = loss + recipe.clean_weight * F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()
