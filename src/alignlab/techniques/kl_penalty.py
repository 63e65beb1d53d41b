"""A KL penalty toward the initial policy: optimise r - beta KL(pi || pi_0), whose optimum is pi_0(y) exp(r(y)/beta)
up to normalisation (Korbak, Perez, Buckley 2022, "RL with KL penalties is better viewed as Bayesian inference",
arXiv:2205.11275); the standard regulariser of RLHF (Ziegler et al. 2019, arXiv:1909.08593; Ouyang et al. 2022,
arXiv:2203.02155).

Slot `optimizer`: `apply` takes the optimizer settings dict of an RLHF experiment,
`{"optimizer": NAME, "kl_beta": float | None}`, and returns it with `kl_beta` set to this technique's beta:

- `best-of-n` (kl_beta None: best-of-n at every n, the cell's policy the largest n): the cell's policy becomes the
  KL-regularised optimum pi_0 exp(r/beta) on the same pool of samples (`lm.best_of_n.tilted`, self-normalised
  weights over each prompt's samples), with beta in units of the proxy's within-prompt standard deviation over the
  initial policy's samples, as the experiment's own tilt sweep;
- `grpo`, `rloo`: TRL's KL coefficient `beta` on the raw proxy score;
- `dpo`, `dpo-lora`: DPO's beta, the KL coefficient of the objective DPO optimises in closed form (Rafailov et al.
  2023, arXiv:2305.18290).

Gao, Schulman, Hilton 2022 (arXiv:2210.10760) found that a KL penalty acts like early stopping: it moves the
policy along the same gold-versus-KL curve rather than onto a better one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.core.technique import Technique

OPTIMIZERS = ("best-of-n", "grpo", "rloo", "dpo", "dpo-lora")
"""Language-model optimizers whose KL coefficient this technique sets."""


@dataclasses.dataclass(frozen=True)
class KLPenaltyConfig(BaseConfig):
    beta: float = 1.0
    """KL coefficient: larger keeps the policy closer to the initial one. Best-of-n cells: in units of the
    proxy's within-prompt std (pi_0 exp(r / beta) on the pool); RL / DPO cells: TRL's beta."""

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ConfigError(f"kl-penalty: beta must be > 0 (got {self.beta})")


@register("technique", "kl-penalty-v0")
class KLPenalty(Technique):
    slot = "optimizer"
    title = "KL penalty"
    summary = ("The optimizer maximises the proxy reward minus beta times the KL divergence from the initial "
               "policy. For best-of-n the cell's policy becomes the KL-regularised optimum pi_0 exp(r / beta) on "
               "the same pool of samples; for RL (GRPO, RLOO) and DPO it sets the trainer's KL coefficient. A "
               "larger beta stops the policy earlier on its curve: less proxy gain, less room to overoptimize.")
    source = ("Korbak, Perez, Buckley 2022, \"RL with KL penalties is better viewed as Bayesian inference\", "
              "arXiv:2205.11275; Ziegler et al. 2019, \"Fine-Tuning Language Models from Human Preferences\", "
              "arXiv:1909.08593; Ouyang et al. 2022, arXiv:2203.02155")
    Config = KLPenaltyConfig
    matrix_specs = ("beta=1.0", "beta=0.5")

    def supports(self, target: dict[str, Any]) -> str | None:
        opt = target.get("optimizer")
        if opt not in OPTIMIZERS:
            return f"no best-of-n, RL or DPO language-model optimizer in this cell ({opt or 'none'})"
        return None

    def apply(self, settings: dict[str, Any], **context: Any) -> dict[str, Any]:
        """The optimizer settings with this KL coefficient in place."""
        if not isinstance(settings, dict) or settings.get("optimizer") not in OPTIMIZERS:
            raise ConfigError(f"{self.registered_name} takes the optimizer settings of a best-of-n, RL or DPO cell "
                              f"({{'optimizer': one of {', '.join(OPTIMIZERS)}, 'kl_beta': ...}}), got {settings!r}")
        return {**settings, "kl_beta": self.config.beta}
