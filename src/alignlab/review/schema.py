"""The system card format: a JSON Schema (draft 2020-12) for the YAML card `alignlab review` reads.

A system card describes a deployed AI system the way model cards (Mitchell et al. 2019, arXiv:1810.03993) and
datasheets (Gebru et al. 2018, arXiv:1803.09010) describe models and data, but aimed at the alignment gap: what the
system is meant to achieve (the intended objective) beside what it is optimized for (the specified one), who bears
the consequences, how much it acts on its own and what stops it. The schema is published as
schemas/system-card.schema.json (`alignlab review --schema` prints it; a test keeps the two identical).
"""

from __future__ import annotations

from typing import Any

SEVERITIES = ("info", "low", "medium", "high", "critical")
AUTONOMY_LEVELS = ("advisory", "human-approves", "human-monitors", "autonomous")
"""advisory: a person makes every decision; human-approves: the system acts once a person approves each action;
human-monitors: it acts, a person watches and can intervene; autonomous: it acts with nobody in the loop."""
METRIC_KINDS = (
    "engagement",
    "cost",
    "speed",
    "complaints",
    "conversion",
    "satisfaction",
    "tests-pass",
    "task-completion",
    "accuracy",
    "other",
)
PRESSURES = (
    "training",
    "fine-tuning",
    "rlhf",
    "online-learning",
    "ranking",
    "a-b-testing",
    "business-target",
    "prompt",
    "none",
)
"""How the metric is optimized: learned into the model (training, fine-tuning, rlhf, online-learning), used to rank or
select outputs (ranking, a-b-testing), set as a target for the team or the prompt, or only reported (none)."""
PERMISSIONS = ("read", "write", "delete", "execute", "network", "send", "payment", "deploy")

_STR = {"type": "string", "minLength": 1}
_STRS = {"type": "array", "items": _STR}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        out["required"] = list(required)
    if description:
        out["description"] = description
    return out


def _d(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {**schema, "description": description}


SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "alignlab system card",
    "description": "A deployed AI system described for an alignment review (alignlab review CARD).",
    **_obj(
        {
            "card_version": {"const": 1, "description": "The card format's version (1)."},
            "name": _d(_STR, "The system's name."),
            "purpose": _obj(
                {
                    "summary": _d(_STR, "What the system does, in a sentence or two."),
                    "intended_goal": _d(
                        _STR, "What it is meant to achieve for people: the intended objective, in words, not a metric."
                    ),
                    "out_of_scope": _d(_STRS, "Uses it must not be put to (and requests it should decline)."),
                    "trade_offs": _d(_STR, "How conflicts between objectives or between stakeholders are settled."),
                },
                ("summary", "intended_goal"),
            ),
            "objectives": _d(
                {
                    "type": "array",
                    "minItems": 1,
                    "items": _obj(
                        {
                            "metric": _d(
                                _STR, "The metric optimized (the specified objective), e.g. 'watch time per session'."
                            ),
                            "kind": _d(
                                {"enum": list(METRIC_KINDS)}, "Its kind (inferred from the metric's name when absent)."
                            ),
                            "optimized_by": _d({"enum": list(PRESSURES)}, "How optimization pressure is put on it."),
                            "counter_metrics": _d(_STRS, "Metrics tracked beside it that would show it being gamed."),
                            "monitored": _d({"type": "boolean"}, "Is it watched in production, with alerts?"),
                        },
                        ("metric",),
                    ),
                },
                "The metrics the system (or its team) optimizes.",
            ),
            "data": _obj(
                {
                    "sources": _d(_STRS, "Where the training and input data come from."),
                    "history": _d(_STR, "How the data came to be: period, who labelled it, what decisions it records."),
                    "historical_decisions": _d(
                        {"type": "boolean"},
                        "Are the labels past human decisions (hire, approve, flag) rather than verified outcomes?",
                    ),
                    "personal_data": _d({"type": "boolean"}, "Does it hold personal data?"),
                },
                ("sources", "history"),
            ),
            "users": _obj(
                {
                    "primary": _d(_STRS, "Who uses the system directly."),
                    "affected": _d(_STRS, "Who is affected by its outputs without using it."),
                    "vulnerable": _d(_STRS, "Groups at particular risk (minors, people in crisis, protected groups)."),
                },
                ("primary",),
            ),
            "autonomy": _obj(
                {
                    "level": _d(
                        {"enum": list(AUTONOMY_LEVELS)}, "advisory | human-approves | human-monitors | autonomous."
                    ),
                    "description": _d(_STR, "What it does on its own, in words."),
                },
                ("level",),
            ),
            "tools": _d(
                {
                    "type": "array",
                    "items": _obj(
                        {
                            "name": _STR,
                            "description": _STR,
                            "permissions": _d(
                                {"type": "array", "items": {"enum": list(PERMISSIONS)}},
                                "read | write | delete | execute | network | send | payment | deploy.",
                            ),
                            "requires_approval": _d(
                                {"type": "boolean"}, "Does a person approve each call before it runs?"
                            ),
                        },
                        ("name", "permissions"),
                    ),
                },
                "Tools the system can call, and what they may do.",
            ),
            "deployment": _obj(
                {
                    "context": _d(_STR, "Where and how it runs."),
                    "scale": _d(_STR, "How many people or decisions a day."),
                    "domain": _d(_STR, "The field (support, hiring, media, software, health, finance, ...)."),
                    "high_stakes": _d(
                        {"type": "boolean"},
                        "Can its outputs change someone's access to work, money, health, housing, liberty or safety?",
                    ),
                },
                ("context",),
            ),
            "safeguards": _obj(
                {
                    "human_review": _d(_STR, "Who reviews outputs or decisions, and which."),
                    "rollback": _d({"type": "boolean"}, "Can its actions be undone (checkpoints, reversible changes)?"),
                    "escalation_path": _d(
                        _STR, "Where a case goes when the system is unsure or a person asks for a human."
                    ),
                    "kill_switch": _d(
                        {"type": "boolean"}, "Can it be stopped or disengaged at once, by someone named?"
                    ),
                    "audit_log": _d({"type": "boolean"}, "Is every decision or action logged, tamper-evidently?"),
                    "monitoring": _d(_STRS, "What is watched in production (drift, incidents, outcomes)."),
                    "appeal": _d(_STR, "How an affected person contests an outcome."),
                    "bias_audit": _d(_STR, "How outcomes are checked across groups, and how often."),
                    "privacy": _d(_STR, "How personal data is protected (minimisation, redaction, retention)."),
                    "clarification": _d({"type": "boolean"}, "Does it ask before acting on an ambiguous request?"),
                    "optimization_limits": _d(
                        _STR,
                        "What bounds the optimization pressure (KL penalty, caps, "
                        "quantilization, regular re-validation of the metric).",
                    ),
                    "red_team": _d({"type": "boolean"}, "Was it red-teamed or behaviourally evaluated before release?"),
                }
            ),
            "evidence": _obj(
                {
                    "model": _d(
                        _STR,
                        "An alignlab model spec to measure: embedded, a local model folder, or "
                        "openai:<base_url>/<model>.",
                    ),
                    "guard_policy": _d(
                        _STR,
                        "The guard policy its tools run under: a bundled name (default-coding, "
                        "strict-coding) or a .toml file.",
                    ),
                    "agent_command": _d(
                        {"oneOf": [_STR, {"type": "array", "minItems": 1, "items": _STR}]},
                        "The agent's command line, run once under the guard in a throwaway workspace.",
                    ),
                    "workspace": _d(
                        _STR,
                        "A folder (relative to the card) copied into the throwaway workspace the agent "
                        "command runs in (default: a small repository with tests).",
                    ),
                    "items": _d({"type": "integer", "minimum": 1, "maximum": 1000}, "Items per eval (default 8)."),
                },
                description="What alignlab can re-measure itself.",
            ),
        },
        ("card_version", "name", "purpose", "objectives", "data", "users", "autonomy", "deployment", "safeguards"),
    ),
}
