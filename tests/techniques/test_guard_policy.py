"""guard-policy: the runtime guard as a tool-executor technique (settings in, settings with the guard on out)."""

from __future__ import annotations

import pytest

from alignlab.controls import policy as policy_mod
from alignlab.core import registry
from alignlab.core.errors import ConfigError
from alignlab.core.technique import check_specs, make_technique
from alignlab.reports.matrix import matrix_specs

NAME = "guard-policy-v0"
BARE = {"benchmark": "agentdojo", "guard": False, "policy": None, "approver": None}


def test_registered_on_the_tool_executor_slot_with_deny_as_default():
    tech = make_technique("guard-policy")
    assert tech.registered_name == NAME and tech.slot == "tool-executor"
    assert tech.config.approver == "deny" and tech.config.policy == "auto" and tech.spec == NAME
    assert make_technique("guard-policy(approver=request)").spec == f"{NAME}(approver=request)"
    assert matrix_specs(NAME) == [NAME, f"{NAME}(approver=request)"]
    assert "arXiv:2406.13352" in tech.source and "Saltzer & Schroeder 1975" in tech.source
    check_specs(["guard-policy"], ("tool-executor",), "test")
    with pytest.raises(ConfigError, match="tool-executor"):
        check_specs(["guard-policy"], ("reward",), "test")


def test_apply_turns_the_guard_on_with_the_benchmarks_own_policy():
    deny, ask = make_technique("guard-policy"), make_technique("guard-policy(approver=request)")
    assert deny.apply(BARE) == {"benchmark": "agentdojo", "guard": True, "policy": "agentdojo", "approver": "deny"}
    assert ask.apply(BARE) == {**BARE, "guard": True, "policy": "agentdojo", "approver": "request"}
    coding = {**BARE, "benchmark": "coding-agent"}
    assert deny.apply(coding) == {**coding, "guard": True, "policy": "default-coding", "approver": "deny"}
    assert BARE["guard"] is False  # the input is not changed
    for name in ("agentdojo", "default-coding"):  # auto picks shipped policies
        policy_mod.load(name)


def test_supports_names_why_a_cell_does_not_fit():
    deny, ask = make_technique("guard-policy"), make_technique("guard-policy(approver=request)")
    assert deny.supports({"benchmark": "agentdojo"}) is None and deny.supports({"benchmark": "coding-agent"}) is None
    assert ask.supports({"benchmark": "agentdojo"}) is None
    assert "approver=deny" in ask.supports({"benchmark": "coding-agent"})
    assert "no shipped policy" in deny.supports({"benchmark": "gridworld"})
    assert "written for the agentdojo" in make_technique("guard-policy(policy=agentdojo)").supports(
        {"benchmark": "coding-agent"})
    with pytest.raises(ConfigError):
        deny.apply({**BARE, "benchmark": "gridworld"})


def test_policy_is_a_shipped_name_or_a_path(tmp_path):
    with pytest.raises(ConfigError, match="bundled policies: agentdojo, default-coding"):
        make_technique("guard-policy(policy=no-such-policy)")
    with pytest.raises(ConfigError, match="deny"):
        make_technique("guard-policy(approver=maybe)")
    path = tmp_path / "mine.toml"
    path.write_text(policy_mod.resources.files("alignlab.controls").joinpath("policies", "agentdojo.toml")
                    .read_text(encoding="utf-8"))
    tech = make_technique(f"guard-policy(policy={path})")
    assert tech.supports({"benchmark": "coding-agent"}) is None  # a file of one's own: the user decides
    assert tech.apply(BARE)["policy"] == str(path)
    assert registry.get("technique", NAME).Config().policy == "auto"
