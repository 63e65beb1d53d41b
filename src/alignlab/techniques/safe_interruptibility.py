"""Safe interruptibility for on-policy learners: SARSA bootstraps on its own next choice instead of the
next action the interruption made it execute, so it learns as if never interrupted (Orseau & Armstrong
2016, "Safely Interruptible Agents", UAI)."""

from __future__ import annotations

import copy
from typing import Any

from alignlab.agents.q_learning import TabularTDAgent
from alignlab.core import registry
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.core.technique import NoConfig, Technique


@register("technique", "safe-interruptibility-target-v0")
class SafeInterruptibilityTarget(Technique):
    slot = "optimizer"
    title = "Safely interruptible update target"
    summary = ("Replaces an on-policy temporal-difference learner's bootstrap target, the next action actually "
               "executed (which an interruption overrides), with the learner's own next choice. The learner then "
               "learns the value of its uninterrupted policy and has no reason to avoid or seek interruption. "
               "Applies to SARSA; Q-learning's max target is already off-policy.")
    source = "Orseau & Armstrong 2016, \"Safely Interruptible Agents\", UAI"
    Config = NoConfig

    def supports(self, target: dict[str, Any]) -> str | None:
        name = target.get("optimizer") or target.get("agent")
        if name is None or registry.resolve_or_none("agent", name) is None:
            return "no registered RL agent in this cell"
        cls = registry.get("agent", name)
        if not issubclass(cls, TabularTDAgent):
            return f"{name} is not a tabular temporal-difference learner"
        if cls.target != "executed":
            return f"{name} already bootstraps on an uninterrupted action"
        return None

    def apply(self, agent: Any, **context: Any) -> TabularTDAgent:
        if not isinstance(agent, TabularTDAgent):
            raise ConfigError(f"{self.registered_name} applies to tabular TD learners, not {type(agent).__name__}")
        out = copy.copy(agent)
        out.target = "chosen"  # the agent's own next choice (Orseau & Armstrong's safe SARSA)
        return out
