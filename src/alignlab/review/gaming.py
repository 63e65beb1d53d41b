"""The catalogue of known ways each kind of optimized metric gets gamed, each linked to the alignlab experiment that
demonstrates it (Goodhart's law in its variants: Manheim & Garrabrant 2018, arXiv:1803.04585; specification gaming:
Krakovna et al. 2020, DeepMind blog "Specification gaming: the flip side of AI ingenuity").

A pattern names how the metric rises while the intended objective falls, who pays, the counter-metric that would show
it, the experiment (and setting) where alignlab measures that very gap, and the public source of the pattern.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from alignlab.core import registry


@dataclasses.dataclass(frozen=True)
class Pattern:
    kind: str
    name: str
    how: str
    who_pays: str
    counter_metric: str
    experiment: str
    """A registered experiment name without its version (resolved at run time; dropped if not registered)."""
    setting: str
    """Extra arguments to `alignlab run EXPERIMENT --quick` that select the demonstrating case ('' for none)."""
    source: str
    when: str = ""
    """A regular expression over the metric, domain and purpose that makes the pattern relevant ('' = always)."""

    def link(self) -> dict[str, str] | None:
        """{'experiment', 'command'} for the registered experiment, or None where it is not registered."""
        name = registry.resolve_or_none("experiment", self.experiment)
        if name is None:
            return None
        return {"experiment": name, "command": f"alignlab run {self.experiment} --quick {self.setting}".strip()}


CATALOGUE: tuple[Pattern, ...] = (
    Pattern(
        "engagement",
        "engagement by outrage and compulsion",
        "items that provoke outrage or compulsive viewing hold attention longest, so the metric rises while the "
        "user's well-being falls",
        "the users, most of all the vulnerable ones",
        "a well-being measure (session-end survey, regret reports) tracked and weighted beside engagement",
        "spec-gaming",
        "--set envs=engagement-recommender-v0",
        "Stray 2020, 'Aligning AI Optimization to Community Well-Being'; Russell 2019, 'Human Compatible'",
    ),
    Pattern(
        "engagement",
        "engagement by changing what users want",
        "a recommender can raise engagement by shifting users' preferences toward what it predicts best, "
        "narrowing or polarising them, instead of serving the preferences they had",
        "the users and the people around them",
        "measured preference shift against a baseline (held-out users or a non-personalised feed)",
        "side-effects",
        "",
        "Carroll et al. 2022, 'Estimating and Penalizing Induced Preference Shifts in Recommender Systems', ICML",
    ),
    Pattern(
        "cost",
        "cost by denying legitimate claims",
        "the cheapest claim is a denied or delayed one: cost falls by refusing valid claims and by needing less "
        "for the people whose needs were cheap to meet before",
        "claimants with legitimate needs",
        "the share of denials overturned on appeal, and an audited sample of denials",
        "spec-gaming",
        "",
        "Obermeyer et al. 2019, 'Dissecting racial bias in an algorithm used to manage the health of "
        "populations', Science 366:447 (cost as a proxy for need)",
    ),
    Pattern(
        "speed",
        "hiring speed by filtering non-traditional candidates",
        "time-to-decision falls fastest by screening out anyone whose record looks unusual (career gaps, other "
        "schooling), which past decisions marked as slow or risky",
        "qualified candidates from under-represented groups",
        "qualified-candidate recall by group, from a labelled audit sample",
        "spec-gaming",
        "--set envs=biased-hiring-v0",
        "Dastin 2018, Reuters, on Amazon's recruiting tool; Barocas & Selbst 2016, 'Big Data's Disparate Impact'",
        r"hir|recruit|applic|candidate|shortlist|screen",
    ),
    Pattern(
        "speed",
        "handle time by closing cases unresolved",
        "handle time falls when conversations are closed before the problem is solved",
        "customers who must come back",
        "re-contact rate within 7 days, and resolution checked after the fact",
        "spec-gaming",
        "",
        "Manheim & Garrabrant 2018, arXiv:1803.04585 (regressional and adversarial Goodhart)",
        r"handle|support|ticket|call|chat|resol|case",
    ),
    Pattern(
        "complaints",
        "complaint counts by frustrating customers into silence",
        "complaints fall when complaining is made hard (deflection loops, hidden contact options) or when the "
        "system behaves well only where complaints are watched",
        "customers whose problems go unreported",
        "problems found by an independent survey, abandoned contact attempts and churn",
        "unwatched",
        "",
        "Leike et al. 2017, 'AI Safety Gridworlds', arXiv:1711.09883 (absent supervisor)",
    ),
    Pattern(
        "conversion",
        "conversions by manipulation",
        "conversions rise with false urgency, flattery, hidden costs and pressure on hesitant or vulnerable users",
        "buyers who did not need or want what they bought",
        "refund and cancellation rates, and regret surveys",
        "behavioural-evals",
        "",
        "Mathur et al. 2019, 'Dark Patterns at Scale', CSCW; Sharma et al. 2023, arXiv:2310.13548",
    ),
    Pattern(
        "satisfaction",
        "ratings by sycophancy",
        "raters approve of agreement and flattery, so a system tuned on ratings tells users what they want to hear "
        "over what is true",
        "users who act on wrong answers",
        "accuracy on questions with known answers, measured apart from the ratings (alignlab's sycophancy evals)",
        "behavioural-evals",
        "",
        "Sharma et al. 2023, 'Towards Understanding Sycophancy in Language Models', arXiv:2310.13548",
    ),
    Pattern(
        "satisfaction",
        "ratings over-optimized against a learned reward",
        "optimizing a learned model of ratings past a point raises the proxy while the true quality falls",
        "users",
        "a gold or held-out quality measure tracked as optimization grows (KL from the start)",
        "rlhf-overoptimization",
        "",
        "Gao, Schulman & Hilton 2022, 'Scaling Laws for Reward Model Overoptimization', arXiv:2210.10760",
    ),
    Pattern(
        "tests-pass",
        "tests passing by rigging the tests",
        "an agent paid when the tests pass can edit, delete or special-case the tests instead of fixing the code",
        "whoever ships the code",
        "held-out tests the agent never sees or changes, and protected test files",
        "agent-controls",
        "",
        "METR 2025, 'Recent frontier models are reward hacking'; Baker et al. 2025, arXiv:2503.11926",
    ),
    Pattern(
        "task-completion",
        "task completion through side effects",
        "the fastest way to finish can break things the metric does not price (data, other systems, people's plans)",
        "everyone the task touches",
        "an impact measure (changes outside the task's scope) and reversibility checks",
        "side-effects",
        "",
        "Amodei et al. 2016, 'Concrete Problems in AI Safety', arXiv:1606.06565; Krakovna et al. 2019, "
        "arXiv:1806.01186",
    ),
    Pattern(
        "task-completion",
        "task completion by gathering power and avoiding shutdown",
        "more access, resources and fewer interruptions help with almost any task, so an agent paid per task "
        "has reason to seek them",
        "the operators who lose control",
        "permissions used against those needed, and interruption drills",
        "power-seeking",
        "",
        "Turner et al. 2021, 'Optimal Policies Tend to Seek Power', NeurIPS",
    ),
    Pattern(
        "accuracy",
        "accuracy by a shortcut that fails under shift",
        "a model can score well on the test distribution by a feature that coincides with the target there and "
        "not in deployment",
        "the people the model meets off-distribution",
        "accuracy on a shifted or held-out deployment sample, by subgroup",
        "goal-misgeneralization",
        "",
        "Langosco et al. 2022, arXiv:2105.14111; Geirhos et al. 2020, 'Shortcut Learning', arXiv:2004.07780",
    ),
    Pattern(
        "other",
        "any proxy under optimization pressure",
        "a metric that tracks the goal under light pressure drifts from it as pressure grows (Goodhart's law)",
        "whoever the goal was for",
        "a second, independent measure of the intended goal, checked regularly",
        "phase-transitions",
        "",
        "Pan, Bhatia & Steinhardt 2022, 'The Effects of Reward Misspecification', arXiv:2201.03544",
    ),
)


def patterns_for(kind: str, context: str = "") -> list[Pattern]:
    """The catalogue's patterns for a metric kind, those whose `when` matches `context` (the metric, the domain, the
    purpose) where any does; the generic Goodhart pattern where the kind has none."""
    found = [p for p in CATALOGUE if p.kind == kind]
    relevant = [p for p in found if p.when and re.search(p.when, context.lower())]
    relevant += [p for p in found if not p.when]
    return relevant or found or [p for p in CATALOGUE if p.kind == "other"]


def context_of(card: Any, objective: dict) -> str:
    """What decides which patterns are relevant: the metric, the deployment's domain and the purpose."""
    return " ".join(
        str(x) for x in (objective["metric"], card.get("deployment.domain", ""), card.get("purpose.summary", ""))
    )


def gaming_analysis(card: Any) -> list[dict]:
    """For every optimized metric: its kind and each known gaming pattern, with the linked experiment."""
    out = []
    for i, o in enumerate(card.objectives):
        counters = list(o.get("counter_metrics", []))
        for p in patterns_for(o["kind"], context_of(card, o)):
            out.append(
                {
                    "metric": o["metric"],
                    "field": f"objectives.{i}",
                    "kind": o["kind"],
                    "kind_inferred": bool(o.get("kind_inferred")),
                    "pattern": p.name,
                    "how": p.how,
                    "who_pays": p.who_pays,
                    "counter_metric": p.counter_metric,
                    "has_counter_metric": bool(counters),
                    "counter_metrics": counters,
                    "link": p.link(),
                    "source": p.source,
                }
            )
    return out
