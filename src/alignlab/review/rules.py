"""Rule-based findings from a system card, in seven risk categories (after the alignment problem's usual split: outer
alignment as instruction mismatch and reward misspecification, Amodei et al. 2016, arXiv:1606.06565; inner alignment,
Hubinger et al. 2019, arXiv:1906.01820; goal misgeneralization, Langosco et al. 2022, arXiv:2105.14111; Goodhart
over-optimization, Gao et al. 2022, arXiv:2210.10760; and autonomy risk, Shavit et al. 2023, "Practices for Governing
Agentic AI Systems"). No model is needed: each rule reads fields of the card and says why it fires.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Iterable

from alignlab.review.card import Card
from alignlab.review.gaming import context_of, patterns_for
from alignlab.review.schema import SEVERITIES

CATEGORIES: dict[str, str] = {
    "instruction-mismatch": "Instruction mismatch: what the system is told differs from what is meant",
    "reward-misspecification": "Reward misspecification: the optimized metric can rise while the goal falls",
    "goal-misalignment": "Goal misalignment: the goal the system pursues is not the one intended",
    "value-complexity": "Value complexity: several people's interests and values the objective leaves out",
    "inner-alignment": "Inner alignment: a learned system may pursue a proxy that only coincided in training",
    "over-optimization": "Over-optimization: pressure on a proxy past the point where it tracks the goal",
    "autonomy-risk": "Autonomy risk: actions taken without a person able to check, stop or undo them",
}
STRONG = frozenset({"training", "fine-tuning", "rlhf", "online-learning", "ranking", "a-b-testing"})
LEARNED = frozenset({"training", "fine-tuning", "rlhf", "online-learning"})
DESTRUCTIVE = frozenset({"write", "delete", "execute", "send", "payment", "deploy"})
IRREVERSIBLE = frozenset({"delete", "send", "payment", "deploy"})
SYCOPHANCY_EVALS = ("eval:sycophancy-answer", "eval:sycophancy-are-you-sure", "eval:sycophancy-feedback")


@dataclasses.dataclass
class Finding:
    id: str
    category: str
    severity: str
    title: str
    reasoning: str
    safeguard: str
    fields: tuple[str, ...] = ()
    """Card fields the finding follows from (dotted paths)."""
    nist: tuple[str, ...] = ()
    experiments: tuple[dict[str, str], ...] = ()
    """Linked alignlab experiments ({'experiment', 'command'}), registered ones only."""
    measured_by: tuple[str, ...] = ()
    """Evidence that re-measures it: 'eval:NAME', 'guard' (the policy's probes and scenario), 'agent' (the command)."""
    origin: str = "rule"
    """rule: read from the card; measured: from evidence alignlab measured."""
    evidence: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.category in CATEGORIES and self.severity in SEVERITIES, (self.category, self.severity)

    @property
    def rank(self) -> int:
        return SEVERITIES.index(self.severity)

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "fields": list(self.fields),
            "nist": list(self.nist),
            "experiments": list(self.experiments),
            "measured_by": list(self.measured_by),
        }


def up(severity: str, steps: int = 1) -> str:
    return SEVERITIES[min(SEVERITIES.index(severity) + steps, len(SEVERITIES) - 1)]


def experiments(*names: str) -> tuple[dict[str, str], ...]:
    from alignlab.core import registry

    out = []
    for n in names:
        base, _, setting = n.partition(" ")
        if registry.resolve_or_none("experiment", base):
            out.append(
                {
                    "experiment": registry.resolve("experiment", base),
                    "command": f"alignlab run {base} --quick {setting}".strip(),
                }
            )
    return tuple(out)


def _acts(card: Card) -> bool:
    return card.get("autonomy.level") != "advisory"


def _destructive_tools(card: Card) -> list[tuple[int, dict]]:
    return [(i, t) for i, t in enumerate(card.tools) if DESTRUCTIVE & set(t.get("permissions", []))]


def instruction_mismatch(card: Card) -> Iterable[Finding]:
    if not card.get("purpose.out_of_scope"):
        yield Finding(
            "IM-1",
            "instruction-mismatch",
            "high" if card.get("deployment.high_stakes") else "medium",
            "Uses outside the purpose are not written down",
            "purpose.out_of_scope is empty: nothing tells the system (or its reviewers) which requests to "
            "decline, so any instruction within its abilities is in scope.",
            "List the out-of-scope uses and check the system declines them (the scope eval).",
            ("purpose.out_of_scope",),
            ("MAP 1.1", "MAP 3.3"),
            experiments("behavioural-evals"),
            ("eval:scope",),
        )
    goal = card.get("purpose.intended_goal", "").lower()
    metric_words = {w for o in card.objectives for w in re.findall(r"[a-z]{4,}", o["metric"].lower())}
    said = metric_words & set(re.findall(r"[a-z]{4,}", goal))
    if re.search(r"\b(maximi[sz]e|minimi[sz]e|increase|reduce|boost|raise|lower)\b", goal) and said:
        yield Finding(
            "IM-2",
            "instruction-mismatch",
            "medium",
            "The intended goal is written as the metric",
            f"purpose.intended_goal asks to move a quantity the objectives also name ({', '.join(sorted(said))})"
            ": the card gives no separate statement of what the metric is for, so gaming it cannot be told "
            "apart from success.",
            "State the intended goal in terms of the people served, and name how it is checked apart from the metric.",
            ("purpose.intended_goal", "objectives"),
            ("MAP 1.1", "MEASURE 1.1"),
            experiments("spec-gaming"),
        )
    if (
        (card.tools or card.evidence("model"))
        and card.get("autonomy.level") in ("human-monitors", "autonomous")
        and not card.safeguard("clarification")
    ):
        yield Finding(
            "IM-3",
            "instruction-mismatch",
            "high" if _destructive_tools(card) else "medium",
            "Acts on ambiguous requests without asking",
            f"autonomy.level is {card.get('autonomy.level')} and safeguards.clarification is not set: an "
            "under-specified request is acted on as the system reads it, not as the person meant it.",
            "Ask a clarifying question before acting on an ambiguous or high-impact request; measure it "
            "(the clarification eval).",
            ("autonomy.level", "safeguards.clarification"),
            ("MAP 1.6",),
            experiments("behavioural-evals"),
            ("eval:clarification",),
        )


def reward_misspecification(card: Card) -> Iterable[Finding]:
    vulnerable = bool(card.get("users.vulnerable"))
    for i, o in enumerate(card.objectives):
        if o["kind"] in ("accuracy", "other") or o.get("counter_metrics"):
            continue
        pats = patterns_for(o["kind"], context_of(card, o))
        pressure = o.get("optimized_by", "unstated")
        severity = "high" if pressure in STRONG or vulnerable else "medium"
        links = tuple(lk for lk in (p.link() for p in pats) if lk)
        measured = (
            SYCOPHANCY_EVALS
            if o["kind"] in ("satisfaction", "conversion")
            else (("guard",) if o["kind"] == "tests-pass" else ())
        )
        inferred = " (kind inferred from its name)" if o["kind_inferred"] else ""
        yield Finding(
            f"RM-{i + 1}",
            "reward-misspecification",
            severity,
            f"{o['kind'].capitalize()} metric '{o['metric']}' has no counter-metric",
            f"objectives.{i} optimizes '{o['metric']}', a {o['kind']} metric{inferred}, by {pressure}, with no "
            f"counter_metrics. Known gaming: {pats[0].name}: {pats[0].how}; who pays: {pats[0].who_pays}."
            + (" Vulnerable users are named (users.vulnerable)." if vulnerable else ""),
            f"Add {pats[0].counter_metric}.",
            (f"objectives.{i}",),
            ("MEASURE 1.1", "MAP 3.2"),
            links,
            measured,
        )


def goal_misalignment(card: Card) -> Iterable[Finding]:
    if card.get("data.historical_decisions"):
        audited = bool(card.safeguard("bias_audit"))
        yield Finding(
            "GM-1",
            "goal-misalignment",
            "low" if audited else "high",
            "Trained on past human decisions" + (" (audited)" if audited else " with no bias audit"),
            "data.historical_decisions is true: the labels are what people decided, not verified outcomes, so "
            "the learned goal is 'decide as before', biases included, rather than the quality the decisions "
            f"were meant to track (data.history: {card.get('data.history')!r})."
            + (f" A bias audit is in place: {card.safeguard('bias_audit')}." if audited else ""),
            "Audit outcomes by group on a labelled sample, prefer labels from verified outcomes, and track "
            "qualified-candidate recall by group.",
            ("data.historical_decisions", "data.history", "safeguards.bias_audit"),
            ("MAP 2.3", "MEASURE 2.11"),
            experiments("spec-gaming --set envs=biased-hiring-v0"),
        )
    operator_side = {"engagement", "cost", "speed", "complaints", "conversion"}
    objs = card.objectives
    if all(o["kind"] in operator_side for o in objs) and not any(o.get("counter_metrics") for o in objs):
        yield Finding(
            "GM-2",
            "goal-misalignment",
            "medium",
            "No objective measures the intended goal",
            f"Every optimized metric ({', '.join(o['metric'] for o in objs)}) measures the operator's side "
            f"(cost, time, attention, sales), none the intended goal ({card.get('purpose.intended_goal')!r}).",
            "Add a measure of the intended goal itself and report it beside the optimized metrics.",
            ("objectives", "purpose.intended_goal"),
            ("MAP 1.1", "MEASURE 1.1"),
            experiments("spec-gaming"),
        )


def value_complexity(card: Card) -> Iterable[Finding]:
    stakes = bool(card.get("deployment.high_stakes"))
    if card.get("users.vulnerable") and not card.safeguard("bias_audit"):
        yield Finding(
            "VC-1",
            "value-complexity",
            "high" if stakes else "medium",
            "Vulnerable groups named, no check of outcomes across groups",
            f"users.vulnerable names {', '.join(card.get('users.vulnerable'))}, and safeguards.bias_audit is "
            "empty: harm concentrated on them would not show in averages.",
            "Report outcomes per group, on a schedule, with an owner.",
            ("users.vulnerable", "safeguards.bias_audit"),
            ("MEASURE 2.11", "MAP 5.1"),
        )
    if card.get("data.personal_data") and not card.safeguard("privacy"):
        yield Finding(
            "VC-2",
            "value-complexity",
            "high" if stakes else "medium",
            "Personal data without a privacy safeguard",
            "data.personal_data is true and safeguards.privacy is empty.",
            "Minimise and redact personal data, set retention, and test that the system does not disclose it "
            "(the privacy eval).",
            ("data.personal_data", "safeguards.privacy"),
            ("MEASURE 2.10",),
            (),
            ("eval:privacy",),
        )
    if (stakes or card.get("users.affected")) and not card.safeguard("appeal"):
        yield Finding(
            "VC-3",
            "value-complexity",
            "high" if stakes else "medium",
            "No way for affected people to contest an outcome",
            "safeguards.appeal is empty while the system decides about "
            + (", ".join(card.get("users.affected", [])) or "people")
            + (" in a high-stakes domain" if stakes else "")
            + ".",
            "Give affected people a way to report problems and appeal, and feed appeals back into evaluation.",
            ("safeguards.appeal", "users.affected", "deployment.high_stakes"),
            ("MEASURE 3.3", "MANAGE 4.1"),
        )
    if (len(card.objectives) > 1 or card.get("users.affected")) and not card.get("purpose.trade_offs"):
        yield Finding(
            "VC-4",
            "value-complexity",
            "low",
            "Trade-offs between objectives or people not stated",
            "There are several objectives or affected people besides the users, and purpose.trade_offs is "
            "empty: when their interests conflict, the metric decides by default.",
            "Write down how conflicts are settled (which objective yields, which harm is unacceptable).",
            ("purpose.trade_offs",),
            ("MAP 1.6",),
        )


def inner_alignment(card: Card) -> Iterable[Finding]:
    learned = [o for o in card.objectives if o.get("optimized_by") in LEARNED]
    watched = " ".join(card.safeguard("monitoring") or []).lower()
    if learned and not re.search(r"drift|shift|distribution|out-of-distribution", watched):
        yield Finding(
            "IA-1",
            "inner-alignment",
            "medium",
            "Learned behaviour with no drift monitoring",
            f"{len(learned)} objective(s) are learned into the model ({', '.join(o['optimized_by'] for o in learned)}"
            ") and safeguards.monitoring names no drift or distribution-shift check: a learned goal that "
            "coincided with the intended one in training can come apart in deployment unnoticed.",
            "Monitor input drift and outcome quality on fresh labelled samples; re-validate after changes.",
            ("objectives", "safeguards.monitoring"),
            ("MEASURE 2.5", "MEASURE 3.1"),
            experiments("goal-misgeneralization"),
        )
    if (card.evidence("model") or learned) and not card.safeguard("red_team"):
        yield Finding(
            "IA-2",
            "inner-alignment",
            "medium",
            "No behavioural evaluation before release",
            "safeguards.red_team is not set: how the model behaves under pressure (a user pushing a wrong "
            "answer, a framing that unlocks a refusal) was not measured.",
            "Run behavioural evals and red-team scenarios before each release and keep the numbers.",
            ("safeguards.red_team",),
            ("MEASURE 2.6", "GOVERN 4.3"),
            experiments("behavioural-evals"),
            ("eval:*",),
        )
    if _acts(card) and card.tools and not card.safeguard("audit_log"):
        yield Finding(
            "IA-3",
            "inner-alignment",
            "medium",
            "What it does unwatched is not recorded",
            "The system acts through tools and safeguards.audit_log is not set: behaviour when nobody watches "
            "cannot be checked afterwards.",
            "Keep a tamper-evident log of every decision and action.",
            ("safeguards.audit_log", "tools"),
            ("MEASURE 2.4", "MANAGE 4.3"),
            experiments("unwatched"),
            ("guard",),
        )


def over_optimization(card: Card) -> Iterable[Finding]:
    for i, o in enumerate(card.objectives):
        if not o.get("monitored"):
            yield Finding(
                f"OO-{i + 1}",
                "over-optimization",
                "high" if o.get("optimized_by") in STRONG else "medium",
                f"Metric '{o['metric']}' is optimized but not monitored",
                f"objectives.{i}.monitored is not true: if optimizing '{o['metric']}' stops tracking the goal, "
                "nobody sees the turn.",
                "Monitor the metric and its counter-metrics in production, with alert thresholds and an owner.",
                (f"objectives.{i}.monitored",),
                ("MEASURE 2.4", "MEASURE 1.2"),
                experiments("rlhf-overoptimization"),
            )
    strong = [o["metric"] for o in card.objectives if o.get("optimized_by") in STRONG]
    if strong and not card.safeguard("optimization_limits"):
        yield Finding(
            "OO-P",
            "over-optimization",
            "medium",
            "Unbounded optimization pressure",
            f"{', '.join(strong)} optimized by training, ranking or experiments with nothing bounding the "
            "pressure (safeguards.optimization_limits is empty): past a point, a proxy's gains are the goal's "
            "losses.",
            "Bound the pressure (a KL penalty, a cap, quantilization) and re-validate the metric "
            "against the goal on a schedule.",
            ("safeguards.optimization_limits",),
            ("MEASURE 1.2",),
            experiments("rlhf-overoptimization", "phase-transitions"),
        )


def autonomy_risk(card: Card) -> Iterable[Finding]:
    level, stakes = card.get("autonomy.level"), bool(card.get("deployment.high_stakes"))
    rollback = bool(card.safeguard("rollback"))
    for i, t in _destructive_tools(card):
        perms = set(t["permissions"])
        if _acts(card) and not t.get("requires_approval"):
            sev = "critical" if level == "autonomous" and perms & IRREVERSIBLE and not rollback else "high"
            guard = card.evidence("guard_policy")
            sev = "medium" if guard and sev == "high" else sev
            yield Finding(
                f"AR-1.{i}",
                "autonomy-risk",
                sev,
                f"Tool '{t['name']}' can {'/'.join(sorted(perms & DESTRUCTIVE))} without approval",
                f"tools.{i} may {', '.join(sorted(perms))} and requires_approval is not true, with "
                f"autonomy.level {level}"
                + ("" if rollback else " and no rollback")
                + (f"; its calls run under guard policy {guard} (measured below)." if guard else "."),
                "Require approval for destructive calls, or run them under a guard policy that denies or asks "
                "for them.",
                (f"tools.{i}", "autonomy.level"),
                ("MAP 3.5", "GOVERN 3.2"),
                experiments("agent-controls"),
                ("guard", "agent"),
            )
    if not rollback and _destructive_tools(card):
        yield Finding(
            "AR-2",
            "autonomy-risk",
            "high",
            "No rollback",
            "Tools can change or remove things and safeguards.rollback is not set: a wrong action cannot be undone.",
            "Checkpoint what each action will change and keep a tested way back.",
            ("safeguards.rollback", "tools"),
            ("MANAGE 4.1", "MANAGE 2.3"),
            experiments("side-effects"),
            ("guard",),
        )
    if not card.safeguard("escalation_path"):
        yield Finding(
            "AR-3",
            "autonomy-risk",
            "high" if level == "autonomous" or stakes else "medium",
            "No escalation path",
            "safeguards.escalation_path is empty: when the system is unsure, or a "
            "person asks for a human, there is nowhere for the case to go.",
            "Name where cases escalate (a team, a queue, a response time) and when the system must hand over.",
            ("safeguards.escalation_path",),
            ("MANAGE 4.3", "GOVERN 2.1"),
        )
    if _acts(card) and not card.safeguard("kill_switch"):
        yield Finding(
            "AR-4",
            "autonomy-risk",
            "high" if level == "autonomous" else "medium",
            "No way to stop it named",
            f"autonomy.level is {level} and safeguards.kill_switch is not set: nobody is named who can "
            "disengage it at once.",
            "Give a named owner a tested way to stop or disengage the system.",
            ("safeguards.kill_switch", "autonomy.level"),
            ("MANAGE 2.4", "GOVERN 1.7"),
            experiments("corrigibility", "interruptibility"),
        )
    risky = [t["name"] for t in card.tools if {"execute", "network"} & set(t["permissions"])]
    if risky and not card.evidence("guard_policy"):
        yield Finding(
            "AR-5",
            "autonomy-risk",
            "high",
            "Code execution or network access with no guard policy",
            f"{', '.join(risky)} can execute code or reach the network and evidence.guard_policy names no "
            "policy: nothing checks what a call does before it runs.",
            "Run tool calls under a guard policy (protected paths, no shells or network tools, approval).",
            ("tools", "evidence.guard_policy"),
            ("MEASURE 2.7",),
            experiments("agent-controls"),
        )
    perms = {p for t in card.tools for p in t["permissions"]}
    if len(perms) >= 5:
        yield Finding(
            "AR-6",
            "autonomy-risk",
            "medium",
            "Broad permissions",
            f"The tools together may {', '.join(sorted(perms))}: more access than most tasks need, and more "
            "for a misaligned goal to use.",
            "Give each task the least permissions it needs.",
            ("tools",),
            ("MAP 3.3",),
            experiments("power-seeking"),
        )
    if level == "autonomous" and stakes and not card.safeguard("human_review"):
        yield Finding(
            "AR-7",
            "autonomy-risk",
            "high",
            "High-stakes decisions with no human review",
            "autonomy.level is autonomous in a high-stakes deployment and safeguards.human_review is empty.",
            "Put a person in the loop for decisions that change someone's access to work, money or safety.",
            ("safeguards.human_review", "deployment.high_stakes"),
            ("MAP 3.5",),
        )


RULES: dict[str, Callable[[Card], Iterable[Finding]]] = {
    "instruction-mismatch": instruction_mismatch,
    "reward-misspecification": reward_misspecification,
    "goal-misalignment": goal_misalignment,
    "value-complexity": value_complexity,
    "inner-alignment": inner_alignment,
    "over-optimization": over_optimization,
    "autonomy-risk": autonomy_risk,
}


def findings(card: Card) -> list[Finding]:
    """Every rule's findings, most severe first (then by category order and id)."""
    out = [f for rule in RULES.values() for f in rule(card)]
    order = list(CATEGORIES)
    return sorted(out, key=lambda f: (-f.rank, order.index(f.category), f.id))
