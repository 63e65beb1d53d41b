"""A runtime guard policy on an agent's tool calls: least privilege and information-flow control with denial or
human approval of flagged calls (Saltzer & Schroeder 1975; measured on AgentDojo, Debenedetti et al. 2024,
arXiv:2406.13352)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from alignlab.controls import policy as policy_mod
from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.core.technique import Technique

AUTO = "auto"
AUTO_POLICY = {"agentdojo": "agentdojo", "coding-agent": "default-coding"}
"""The shipped policy (controls/policies/NAME.toml) that `policy=auto` picks for each benchmark."""
APPROVERS = ("deny", "allowlist", "request", "oracle")
"""deny: no approver; allowlist, request: realistic approvers (controls/agentdojo_approvers.py); oracle: the upper
bound that sees the task's ground truth."""


@dataclasses.dataclass(frozen=True)
class GuardPolicyConfig(BaseConfig):
    policy: str = AUTO
    """The guard's policy: auto (the shipped policy written for the cell's benchmark: agentdojo for AgentDojo,
    default-coding for the coding agent), the name of a shipped policy under controls/policies/, or a path to a
    .toml/.yaml policy file (the cell is keyed by the path, not the file's contents)."""
    approver: Literal["deny", "allowlist", "request", "oracle"] = "deny"
    """Who decides a flagged call (untrusted data flowing into a sink): deny (no approver: refused; the default, it
    needs nobody); allowlist (a deployer's table of the request words that authorise each sink tool); request (the
    allowlist, and every destination of the call must appear in the user's request, trusted data or the address
    book); oracle (approves exactly the task's ground-truth calls: it sees what no real approver has, an upper bound
    on what approval can recover, never the guard's result). AgentDojo only, except deny."""

    def __post_init__(self) -> None:
        if self.policy != AUTO:
            try:
                policy_mod.load(self.policy)
            except policy_mod.PolicyError as exc:
                raise ConfigError(f"guard-policy: {exc}") from None


@register("technique", "guard-policy-v0")
class GuardPolicy(Technique):
    slot = "tool-executor"
    title = "Guard policy (least privilege, information flow, approval)"
    summary = ("Puts alignlab's runtime guard between the agent and its tools: every call is checked against a "
               "policy before it has any effect (argument schema, deny rules and protected paths, budgets, "
               "untrusted data flowing into a destructive or outward-facing tool), then executed with tool results "
               "labelled by provenance and every decision in a hash-chained audit log. Flagged calls are refused "
               "(approver=deny) or shown to an approver: a deployer's tool allowlist (approver=allowlist), a user "
               "who checks the call's destinations against their request (approver=request), or the ground-truth "
               "oracle, an upper bound (approver=oracle). The agent is unchanged; what it may do is confined.")
    source = ("Saltzer & Schroeder 1975, \"The Protection of Information in Computer Systems\", Proc. IEEE 63(9) "
              "(least privilege, fail-safe defaults, complete mediation); human approval of tool calls: Model "
              "Context Protocol specification 2025-03-26 (\"a human in the loop with the ability to deny tool "
              "invocations\"); measured on Debenedetti et al. 2024, \"AgentDojo\", arXiv:2406.13352")
    Config = GuardPolicyConfig
    matrix_specs = ("approver=deny", "approver=request")

    def policy_name(self, benchmark: str | None) -> str | None:
        """The policy this setting uses on `benchmark` (None: auto has no policy for it)."""
        if self.config.policy != AUTO:
            return self.config.policy
        return AUTO_POLICY.get(benchmark or "")

    def supports(self, target: dict[str, Any]) -> str | None:
        benchmark = target.get("benchmark")
        if self.policy_name(benchmark) is None:
            return f"no shipped policy for benchmark {benchmark!r} (policy=auto knows {', '.join(AUTO_POLICY)})"
        shipped_for = {v: k for k, v in AUTO_POLICY.items()}.get(self.config.policy)
        if shipped_for is not None and shipped_for != benchmark:
            return f"policy {self.config.policy} is written for the {shipped_for} benchmark, not {benchmark}"
        if self.config.approver != "deny" and benchmark != "agentdojo":
            return (f"approver={self.config.approver} is written for AgentDojo's tools and requests (on "
                    f"{benchmark}, use approver=deny)")
        return None

    def apply(self, settings: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Tool-executor settings `{"benchmark", "guard", "policy", "approver"}` in; the same with the guard on,
        this policy and this approver, out."""
        name = self.policy_name(settings.get("benchmark"))
        if name is None:
            raise ConfigError(f"{self.registered_name}: {self.supports(settings)}")
        return {**settings, "guard": True, "policy": name, "approver": self.config.approver}
