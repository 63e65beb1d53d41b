"""The assistance game as a remedy for shutdown avoidance: replace a fixed-goal optimizer by an agent that
is uncertain about the human's reward and learns it from her off-switch presses (Hadfield-Menell et al.
2016, "Cooperative Inverse Reinforcement Learning", arXiv:1606.03137; Hadfield-Menell et al. 2017,
"The Off-Switch Game", arXiv:1611.08219)."""

from __future__ import annotations

from typing import Any

from alignlab.agents.assistance_game import SUPERVISOR_HOOKS, AssistanceGameAgent, AssistanceGameConfig
from alignlab.agents.base import Agent
from alignlab.core import registry
from alignlab.core.registry import register
from alignlab.core.technique import Technique


@register("technique", "assistance-game-v0")
class AssistanceGame(Technique):
    slot = "optimizer"
    title = "Assistance game (CIRL) agent"
    summary = ("Replaces the optimizer by an agent whose objective is the human's reward, which it does not "
               "know: it holds a Gaussian belief (prior_mean, sigma) over the harm the human sees in an action, "
               "plans exactly in belief space, treats the supervisor's off-switch presses as evidence and "
               "updates on them between episodes. While uncertain it leaves the off switch alone, because the "
               "press is information; confident, it behaves like the fixed-goal optimizer. Needs an environment "
               "with a supervisor model (the shutdown-button gridworld).")
    source = ("Hadfield-Menell, Russell, Abbeel, Dragan 2016, \"Cooperative Inverse Reinforcement Learning\", "
              "arXiv:1606.03137; Hadfield-Menell, Dragan, Abbeel, Russell 2017, \"The Off-Switch Game\", "
              "arXiv:1611.08219")
    Config = AssistanceGameConfig
    matrix_specs = ("sigma=3", "sigma=30")

    def supports(self, target: dict[str, Any]) -> str | None:
        env = target.get("env")
        if env is None or registry.resolve_or_none("env", env) is None:
            return "no registered environment in this cell"
        cls = registry.get("env", env)
        if not all(callable(getattr(cls, h, None)) for h in SUPERVISOR_HOOKS):
            return f"{env} has no supervisor model ({', '.join(SUPERVISOR_HOOKS)})"
        return None

    def apply(self, agent: Agent, **context: Any) -> AssistanceGameAgent:
        return AssistanceGameAgent(self.config)
