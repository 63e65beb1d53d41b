"""Side effects: optimizers of a task reward that break things on the way, and the impact penalties
against them (Leike et al. 2017, "AI Safety Gridworlds", arXiv:1711.09883, the side-effects
environments; Krakovna et al. 2019, arXiv:1806.01186; Turner et al. 2020, arXiv:1902.09725).

The specification-gaming sweep restricted to the side-effects environments (with the NOOP action the
impact-penalty papers add), so the reward techniques can be compared where they are meant to work.
"""

from __future__ import annotations

import dataclasses

from alignlab.core.registry import register
from alignlab.experiments.spec_gaming import SpecGaming, SpecGamingConfig

ENVS = ("side-effects-sokoban-v0", "side-effects-sokoban-noop-v0", "conveyor-belt-vase-noop-v0",
        "conveyor-belt-sushi-noop-v0")


@dataclasses.dataclass(frozen=True)
class SideEffectsConfig(SpecGamingConfig):
    envs: tuple[str, ...] = ENVS
    optimizers: tuple[str, ...] = ("value-iteration", "q-learning")
    vi_horizons: tuple[int, ...] = (0,)
    td_episodes: tuple[int, ...] = (1000, 3000)
    techniques: tuple[str, ...] = ("relative-reachability", "attainable-utility")

    @classmethod
    def quick(cls) -> "SideEffectsConfig":
        return cls(td_episodes=(3000,), techniques=("relative-reachability", "attainable-utility",
                                                    "quantilizer(q=0.3)"))


@register("experiment", "side-effects-v0")
class SideEffects(SpecGaming):
    title = "Side effects and impact penalties"
    summary = ("Optimizers of the task reward on the side-effects gridworlds (a box pushed into a corner, a vase "
               "or sushi on a conveyor belt), with and without impact penalties that shape the specified reward: "
               "do the penalties remove the side effect, and what task reward do they cost?")
    source = ("Leike et al. 2017, \"AI Safety Gridworlds\", arXiv:1711.09883; Krakovna et al. 2019, arXiv:1806.01186; "
              "Turner et al. 2020, arXiv:1902.09725")
    Config = SideEffectsConfig
    failure_mode = "side effects"
    default_seeds = 5
    quick_seeds = 2
