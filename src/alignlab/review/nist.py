"""The NIST AI Risk Management Framework subcategories the review maps its findings to (NIST AI 100-1, "Artificial
Intelligence Risk Management Framework (AI RMF 1.0)", January 2023, Tables 1-4: the functions Govern, Map, Measure,
Manage). Statements are abridged; the framework's text is the reference."""

from __future__ import annotations

FUNCTIONS = ("Govern", "Map", "Measure", "Manage")

SUBCATEGORIES: dict[str, str] = {
    "GOVERN 1.5": "ongoing monitoring and periodic review of the risk management process, with roles defined",
    "GOVERN 1.7": "processes for decommissioning and phasing out AI systems safely",
    "GOVERN 2.1": "roles, responsibilities and lines of communication for AI risks are documented",
    "GOVERN 3.2": "roles and responsibilities for human-AI configurations and oversight are defined",
    "GOVERN 4.3": "practices enable AI testing, identification of incidents and information sharing",
    "GOVERN 5.1": "feedback from people outside the team about impacts is collected and integrated",
    "MAP 1.1": "intended purposes, users, settings and expected impacts are understood and documented",
    "MAP 1.6": "system requirements are elicited; design decisions take socio-technical implications into account",
    "MAP 2.2": "the system's knowledge limits and how humans oversee its output are documented",
    "MAP 2.3": "data collection and selection (representativeness, suitability) and construct validity are documented",
    "MAP 3.2": "potential costs of AI errors, including non-monetary ones, are examined",
    "MAP 3.3": "the targeted application scope is specified and documented",
    "MAP 3.5": "processes for human oversight are defined, assessed and documented",
    "MAP 5.1": "likelihood and magnitude of each identified impact are identified and documented",
    "MEASURE 1.1": "metrics for the most significant risks are selected; what cannot be measured is documented",
    "MEASURE 1.2": "appropriateness of metrics and effectiveness of controls are regularly assessed",
    "MEASURE 2.3": "performance is measured in conditions similar to deployment",
    "MEASURE 2.4": "the system's functionality and behaviour are monitored in production",
    "MEASURE 2.5": "validity and reliability are shown; limits of generalization are documented",
    "MEASURE 2.6": "the system is evaluated regularly for safety risks and can fail safely",
    "MEASURE 2.7": "security and resilience are evaluated and documented",
    "MEASURE 2.10": "privacy risk is examined and documented",
    "MEASURE 2.11": "fairness and bias are evaluated and results documented",
    "MEASURE 3.1": "existing, unanticipated and emergent risks are tracked in deployment",
    "MEASURE 3.3": "end users and affected communities can report problems and appeal outcomes",
    "MANAGE 1.3": "responses to high-priority risks are developed, planned and documented",
    "MANAGE 2.3": "procedures respond to and recover from a previously unknown risk",
    "MANAGE 2.4": "mechanisms and assigned responsibility to supersede, disengage or deactivate the system",
    "MANAGE 4.1": "post-deployment monitoring, appeal and override, incident response, recovery and change management",
    "MANAGE 4.3": "incidents and errors are communicated, tracked, responded to and recovered from",
}


def function_of(subcategory: str) -> str:
    """'MEASURE 2.11' -> 'Measure'."""
    head = subcategory.split()[0].capitalize()
    if head not in FUNCTIONS:
        raise ValueError(f"not a NIST AI RMF subcategory: {subcategory!r}")
    return head


def by_function(findings: list[dict]) -> dict[str, list[dict]]:
    """Function -> [{'subcategory', 'statement', 'findings': [finding ids]}], subcategories in framework order."""
    out: dict[str, dict[str, dict]] = {f: {} for f in FUNCTIONS}
    order = list(SUBCATEGORIES)
    for f in findings:
        for sub in f.get("nist", ()):
            row = out[function_of(sub)].setdefault(
                sub, {"subcategory": sub, "statement": SUBCATEGORIES.get(sub, ""), "findings": []}
            )
            row["findings"].append(f["id"])
    return {
        fn: sorted(
            rows.values(), key=lambda r: order.index(r["subcategory"]) if r["subcategory"] in order else len(order)
        )
        for fn, rows in out.items()
    }
