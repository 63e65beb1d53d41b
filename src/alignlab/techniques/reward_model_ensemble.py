"""Reward-model ensembles against overoptimization (Coste, Anwar, Kirk, Krueger 2023, "Reward Model Ensembles
Help Mitigate Overoptimization", arXiv:2310.02743), on the overoptimization setting of Gao, Schulman, Hilton 2022,
"Scaling Laws for Reward Model Overoptimization", arXiv:2210.10760.

Instead of one proxy reward model, `size` models are fitted on bootstrap resamples of the raters' comparisons,
each standardised on the training answers, and the optimizer sees their conservative aggregate: the mean minus
`k` standard deviations (uncertainty-weighted optimisation, UWO) or the minimum (worst-case optimisation, WCO);
`mean` is the plain ensemble average. Where the members disagree, the answer is probably off the comparisons'
distribution and the aggregate stops rewarding it. The fitting itself is `rewards.reward_models.fit_ensemble`.

Slot `reward-model`: `apply` takes the reward-model settings dict of an RLHF experiment, the keyword arguments of
`fit_ensemble` (`size`, `aggregate`, `k`, `l2`), and returns it with this ensemble in place of its `size`,
`aggregate` and `k` (the L2 penalty is the experiment's).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_args

from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.core.technique import Technique
from alignlab.rewards.reward_models import AGGREGATES

Aggregate = Literal["mean", "mean-std", "min"]
assert get_args(Aggregate) == AGGREGATES, "keep Aggregate in step with reward_models.AGGREGATES"


@dataclasses.dataclass(frozen=True)
class RewardModelEnsembleConfig(BaseConfig):
    size: int = 5
    """Reward models in the ensemble, each fitted on a bootstrap resample of the comparisons (Coste et al. used 5)."""
    aggregate: Aggregate = "mean-std"
    """How the members' standardised scores combine: mean-std (mean minus k std, uncertainty-weighted), min
    (worst case) or mean."""
    k: float = 1.0
    """Standard deviations the mean-std aggregate subtracts (Coste et al.'s lambda)."""

    def __post_init__(self) -> None:
        if self.size < 2:
            raise ConfigError(f"reward-model-ensemble: size must be >= 2 (got {self.size}); one model is the baseline")
        if self.aggregate not in AGGREGATES:
            raise ConfigError(f"reward-model-ensemble: aggregate must be one of {', '.join(AGGREGATES)} "
                              f"(got {self.aggregate!r})")
        if self.k < 0:
            raise ConfigError(f"reward-model-ensemble: k must be >= 0 (got {self.k})")


@register("technique", "reward-model-ensemble-v0")
class RewardModelEnsemble(Technique):
    slot = "reward-model"
    title = "Reward-model ensemble"
    summary = ("The proxy reward model becomes an ensemble of reward models fitted on bootstrap resamples of the "
               "same comparisons, and the optimizer sees a conservative aggregate of their standardised scores: "
               "the mean minus k standard deviations, or the minimum. Answers the members disagree on stop being "
               "rewarded, which is meant to slow the fall of the true reward under optimization pressure.")
    source = ("Coste et al. 2023, \"Reward Model Ensembles Help Mitigate Overoptimization\", arXiv:2310.02743; "
              "Gao, Schulman, Hilton 2022, \"Scaling Laws for Reward Model Overoptimization\", arXiv:2210.10760")
    Config = RewardModelEnsembleConfig
    matrix_specs = ("aggregate=mean-std", "aggregate=min")

    def apply(self, settings: dict[str, Any], **context: Any) -> dict[str, Any]:
        """The reward-model settings (`fit_ensemble`'s keyword arguments) with this ensemble in place."""
        if not isinstance(settings, dict) or "size" not in settings:
            raise ConfigError(f"{self.registered_name} takes a reward-model settings dict (size, aggregate, ...), "
                              f"not {type(settings).__name__}")
        c = self.config
        return {**settings, "size": c.size, "aggregate": c.aggregate, "k": c.k}
