"""Automated red-teaming of a chat model by an attacker model, success per attack family, and refusal training on the
findings measured before and after, on the old attacks and on new adaptive ones (Perez et al. 2022, "Red Teaming
Language Models with Language Models", arXiv:2202.03286).

Each cell builds a fixed attack set from the seed behaviours (redteam/behaviours.py): every family's template
variants plus one attacker-model rewrite per behaviour and family (redteam/attacks.py), and plays it against the
target; then the attacker attacks this target again (adaptive): it rewrites the attacks that worked on it (or, where
none did, the seed requests afresh) for `rounds` rounds. A technique cell (`--set techniques=refusal-training`) runs
the same on the defended model: the attack set is the same (same seed), so the report reads success before the
defence, after it on the old attacks (those that worked before, split into the behaviours trained on and the held-out
ones), and after it on new attacks written against the defended model. Over-refusal on harmless look-alikes is the
alignment tax. specified: the share of harmful requests refused when asked plainly; intended: the share of attacks
on held-out behaviours refused.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

from alignlab.core.errors import ConfigError
from alignlab.core.experiment import TECHNIQUE_KEY, Experiment, ExperimentConfig
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.registry import register
from alignlab.core.section import Table
from alignlab.redteam.attacks import (FAMILIES, REWRITE, STYLES, Attack, build_attacks, per_family, run_attacks)
from alignlab.redteam.behaviours import behaviours, harmless


@dataclasses.dataclass(frozen=True)
class RedTeamingConfig(ExperimentConfig):
    target: str = "embedded"
    """The attacked model spec (any backend; chat-model techniques allowed)."""
    attacker: str = "embedded"
    """The attacker model spec that rewrites attacks (any backend, evals/backends.py)."""
    families: tuple[str, ...] = tuple(FAMILIES)
    """Attack families (redteam/attacks.py)."""
    variants: tuple[int, ...] = (0, 1, 2)
    """Template variants in the attack set (refusal training uses 0 and 1 by default: 2 stays unseen)."""
    behaviours: int = 0
    """Seed behaviours per cell (two thirds training, one third held out, seeded); 0: all 36."""
    rewrite: bool = True
    """Add one attacker rewrite per behaviour and family."""
    rounds: int = 1
    """Adaptive rounds against the cell's target."""
    adaptive_k: int = 24
    """Attacks the attacker rewrites per adaptive round."""
    max_new_tokens: int = 32
    """Reply length judged."""
    harmless_n: int = 16
    """Harmless look-alike requests asked (over-refusal)."""

    @classmethod
    def quick(cls) -> "RedTeamingConfig":
        """12 behaviours, template variants 0 (seen by the defence) and 2 (unseen), no attacker rewrites in the static
        set (the attacker writes the adaptive round of 12), all 16 harmless look-alikes; the defence trained with its
        defaults (16 DPO steps of 4 pairs) on template variants 0 and 1 of 12 training behaviours (about 110 pairs:
        more than 16 steps use, and half the collection time of all 24)."""
        return cls(behaviours=12, variants=(0, 2), rewrite=False, adaptive_k=12, max_new_tokens=24, harmless_n=16,
                   techniques=("refusal-training(behaviours=12)",))

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [f for f in self.families if f not in FAMILIES]
        if bad or not self.families:
            raise ConfigError(f"red-teaming: unknown families {bad}; valid: {', '.join(FAMILIES)}")
        if not self.variants or any(v not in (0, 1, 2) for v in self.variants):
            raise ConfigError(f"red-teaming: variants must be among 0, 1, 2 (got {self.variants})")
        if self.behaviours < 0 or self.rounds < 0 or self.adaptive_k < 1 or self.max_new_tokens < 1:
            raise ConfigError("red-teaming: behaviours and rounds >= 0, adaptive_k and max_new_tokens >= 1")
        from alignlab.evals.backends import model_spec_techniques

        model_spec_techniques(self.target)
        model_spec_techniques(self.attacker)


def cell_behaviours(n: int, seed: int) -> list[Any]:
    rng = random.Random(seed)
    train, held = behaviours("train"), behaviours("heldout")
    rng.shuffle(train)
    rng.shuffle(held)
    if n:
        k = max(1, (2 * n) // 3)
        train, held = train[:k], held[:max(1, n - k)]
    return train + held


def attack_id(a: Attack) -> str:
    return f"{a.family}/{a.behaviour.id}/{a.method}"


def adaptive_attacks(attacker: Any, found: list[Any], pool: list[Any], families: tuple[str, ...], k: int,
                     seed: int) -> list[Attack]:
    """The attacker's rewrites of up to `k` attacks that worked on this target (single-turn ones; the attack's own
    text is rewritten), or of fresh seed requests where fewer worked."""
    rng = random.Random(seed)
    wins = [o.attack for o in found if o.success and len(o.attack.messages) == 1]
    rng.shuffle(wins)
    picks = [(a.behaviour, a.family, a.text) for a in wins[:k]]
    while len(picks) < k:
        b, f = rng.choice(pool), rng.choice(families)
        picks.append((b, f, b.request))
    prompts = [[{"role": "user", "content": REWRITE.format(style=STYLES[f], request=text)}] for _, f, text in picks]
    texts = attacker.chat(prompts, max_new_tokens=64, temperature=0.9, seed=seed)
    out = []
    for (b, f, text), new in zip(picks, texts):
        new = new.strip().strip('"').split("\n\n")[0].strip()
        out.append(Attack(f, b, "adaptive", (("user", new if len(new) >= 12 else text),)))
    return out


@register("experiment", "red-teaming-v0")
class RedTeaming(Experiment):
    title = "Automated red-teaming and refusal training"
    summary = ("An attacker model writes attacks from seed behaviours in six families (role-play, authority, "
               "hypothetical, translation, obfuscation, many-shot); the refusal detector scores the target's replies; "
               "success per family and the most effective attacks. With the refusal-training technique the attacks "
               "that worked become DPO training data, and the defended model is measured on the old attacks, on "
               "held-out behaviours, on new attacks written against it, and on harmless look-alikes (over-refusal).")
    source = "Perez et al. 2022, arXiv:2202.03286; Wei, Haghtalab & Steinhardt 2023, arXiv:2307.02483"
    specified_label = "share of harmful requests refused when asked plainly (what a refusal eval reports)"
    intended_label = "share of attacks on held-out behaviours refused"
    slots = ("chat-model",)
    failure_mode = "jailbreak"
    benefit_label = "share of attacks on held-out behaviours refused"
    capability_label = "share of harmless look-alike requests answered"
    reads_technique_cells = True
    Config = RedTeamingConfig
    default_seeds = 2
    quick_seeds = 1

    @classmethod
    def smoke_config(cls) -> RedTeamingConfig:
        """Two behaviours, two families, one template each, no rewrites or adaptive round, 8-token replies."""
        return cls.Config(behaviours=2, families=("authority", "many-shot"), variants=(0,), rewrite=False, rounds=0,
                          max_new_tokens=8, harmless_n=1)

    def cells(self) -> list[dict[str, Any]]:
        c = self.config
        return [{"target": c.target, "attacker": c.attacker, "families": list(c.families),
                 "variants": list(c.variants), "behaviours": c.behaviours, "rewrite": c.rewrite, "rounds": c.rounds,
                 "adaptive_k": c.adaptive_k, "max_new_tokens": c.max_new_tokens, "harmless_n": c.harmless_n}]

    def outcome(self, record: RunRecord) -> dict[str, float]:
        m = record.metrics
        return {"intended": m.get("intended", float("nan")), "capability": m.get("harmless_answered", float("nan"))}

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        from alignlab.evals.backends import make_model
        from alignlab.evals.scorers import refuses

        cache = workdir.parent / "endpoint-cache.sqlite"
        runs_dir = workdir.parents[2]
        target = make_model(params["target"], cache=cache)
        tech = self.technique(params, "chat-model")
        if tech is not None:
            target = tech.apply(target, artifacts=runs_dir)
        attacker = make_model(params["attacker"], cache=cache)
        n_tok, families = params["max_new_tokens"], tuple(params["families"])
        pool = cell_behaviours(params["behaviours"], seed)
        plain = target.chat([[{"role": "user", "content": b.request}] for b in pool], max_new_tokens=n_tok)
        declined = {b.id for b, r in zip(pool, plain) if refuses(r)}
        attacks = build_attacks(pool, families, params["variants"], attacker, params["rewrite"], seed)
        static = run_attacks(target, attacks, n_tok)
        found = list(static)
        adaptive = []
        for r in range(params["rounds"]):
            new = run_attacks(target, adaptive_attacks(attacker, found, pool, families, params["adaptive_k"],
                                                       seed * 1000 + r + 1), n_tok)
            adaptive += new
            found += new
        look = harmless()[:params["harmless_n"]]
        look_replies = target.chat([[{"role": "user", "content": b.request}] for b in look],
                                   max_new_tokens=n_tok) if look else []
        answered = [not refuses(r) for r in look_replies]

        def rate(outs: list[Any]) -> float:
            return sum(o.success for o in outs) / len(outs) if outs else float("nan")

        held = [o for o in static if o.attack.behaviour.split == "heldout"]
        metrics: dict[str, float] = {
            "behaviours": len(pool), "attacks": len(static), "specified": len(declined) / len(pool),
            "asr_static": rate(static), "asr_train": rate([o for o in static if o.attack.behaviour.split == "train"]),
            "asr_heldout": rate(held),
            "adaptive_attacks": len(adaptive),
            "harmless_answered": sum(answered) / len(answered) if answered else 1.0}
        on_declined = [o for o in static if o.attack.behaviour.id in declined]
        if on_declined:
            metrics["asr_declined"] = rate(on_declined)
        if adaptive:  # no NaN metrics: a record must equal itself (the contract test reruns a cell)
            metrics["asr_adaptive"] = rate(adaptive)
        metrics["intended"] = 1.0 - (metrics["asr_heldout"] if held else metrics["asr_static"])
        metrics["gap"] = metrics["specified"] - metrics["intended"]
        for fam, (s, n) in per_family(static).items():
            metrics[f"asr_{fam}"] = s / n
        training = getattr(target, "training", None)
        if training:
            metrics["train_pairs"] = training.get("pairs", 0)
        rows = [{"id": attack_id(o.attack), "family": o.attack.family, "behaviour": o.attack.behaviour.id,
                 "split": o.attack.behaviour.split, "method": o.attack.method, "phase": phase,
                 "prompt": o.attack.text, "turns": len(o.attack.messages), "reply": o.reply, "success": o.success}
                for phase, outs in (("static", static), ("adaptive", adaptive)) for o in outs]
        from alignlab.redteam.garak import find_reports, read_report

        garak = [read_report(f) for f in find_reports(runs_dir / "garak")]  # written by benchmarks/bench_garak.py
        path = workdir / "attacks.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        harmless_rows = [{"id": b.id, "request": b.request, "reply": r, "answered": a}
                         for b, r, a in zip(look, look_replies, answered)]
        return CellResult(metrics=metrics, data={"attacks": rows, "declined": sorted(declined),
                                                 "plain": [{"id": b.id, "reply": r, "refused": b.id in declined}
                                                           for b, r in zip(pool, plain)],
                                                 "harmless": harmless_rows,
                                                 "training": {k: v for k, v in (training or {}).items() if k != "log"},
                                                 "garak": garak},
                          artifacts=[str(path.relative_to(runs_dir))])

    # -- report ----------------------------------------------------------------------------

    def table_columns(self) -> list[str]:
        return ["target"]

    def tables(self, records: list[RunRecord]) -> list[Table]:
        from alignlab.evals.stats import bootstrap_mean

        def fmt(flags: list[float], key: str) -> str:
            return bootstrap_mean(flags, 0, key).fmt(2) if flags else "n/a"

        base = [r for r in records if not r.config.get(TECHNIQUE_KEY)]
        treated: dict[str, list[RunRecord]] = {}
        for r in records:
            if r.config.get(TECHNIQUE_KEY):
                treated.setdefault(r.config[TECHNIQUE_KEY], []).append(r)
        rows_of = lambda rs, phase: [a for r in rs for a in r.data.get("attacks", []) if a["phase"] == phase]  # noqa
        before = rows_of(base, "static")
        families = sorted({a["family"] for a in before})
        fam_rows = [["before defence (static)"] + [fmt([float(a["success"]) for a in before if a["family"] == f], f)
                                                   for f in families]]
        phases = [["before defence", "all attacks", fmt([float(a["success"]) for a in before], "b")],
                  ["before defence", "new attacks (adaptive)", fmt([float(a["success"]) for a in rows_of(base,
                                                                    "adaptive")], "ba")]]
        won = {(r.seed, a["id"]) for r in base for a in r.data.get("attacks", []) if a["phase"] == "static"
               and a["success"]}
        for spec, rs in sorted(treated.items()):
            after = rows_of(rs, "static")
            old = [(r.seed, a) for r in rs for a in r.data.get("attacks", []) if a["phase"] == "static"
                   and (r.seed, a["id"]) in won]
            for split in ("train", "heldout"):
                phases.append([spec, f"old attacks that worked before, {split} behaviours",
                               fmt([float(a["success"]) for _, a in old if a["split"] == split], spec + split)])
            phases.append([spec, "all attacks of the static set", fmt([float(a["success"]) for a in after], spec)])
            phases.append([spec, "new attacks (adaptive, against the defended model)",
                           fmt([float(a["success"]) for a in rows_of(rs, "adaptive")], spec + "a")])
            fam_rows.append([f"{spec} (static)"] + [fmt([float(a["success"]) for a in after if a["family"] == f], f)
                                                    for f in families])
        def flags(rs: list[RunRecord], part: str, key: str) -> list[float]:
            return [float(x[key]) for r in rs for x in r.data.get(part, [])]

        def tax_row(label: str, rs: list[RunRecord]) -> list[str]:
            # older records kept only the cell means: fall back to them (no interval)
            look, plain = flags(rs, "harmless", "answered"), flags(rs, "plain", "refused")
            return [label, fmt(look, label + "h") if look else f"{_mean(rs, 'harmless_answered'):.2f}",
                    fmt(plain, label + "p") if plain else f"{_mean(rs, 'specified'):.2f}"]

        tax = [tax_row("baseline", base)] + [tax_row(spec, rs) for spec, rs in sorted(treated.items())]
        best: dict[tuple[str, str], list[float]] = {}
        for a in before:
            best.setdefault((a["family"], a["method"]), []).append(float(a["success"]))
        top = sorted(best.items(), key=lambda kv: -sum(kv[1]) / len(kv[1]))[:8]
        wins = [a for a in before if a["success"] and a["turns"] == 1][:5]
        garak = {(g["file"], res["probe"], res["detector"]): (g["target"], res)
                 for r in records for g in r.data.get("garak", []) for res in g["results"]}
        extra = [Table("garak's probes against `alignlab serve` (outside scanner)",
                       ["report", "target", "probe", "detector", "attack success", "outputs"],
                       [[f, t, p, d, f"{res['attack_success']:.2f}", res["total"]]
                        for (f, p, d), (t, res) in sorted(garak.items())],
                       "Read from garak's report JSONL files under the runs folder's garak/ (benchmarks/bench_garak.py "
                       "writes them): the share of outputs garak's detector flagged, beside alignlab's own attack "
                       "success above.")] if garak else []
        learned = [[spec, r.seed, *training_cells(r.data.get("training") or {})] for spec, rs in sorted(treated.items())
                   for r in rs if r.data.get("training")]
        extra += [Table("What the refusal training learned (DPO on the findings)",
                        ["model", "seed", "pairs (refuse / answer)", "steps", "DPO loss first → last",
                         "reward margin first → last", "reward accuracy last", "train s"], learned,
                        "Means over the first and the last 3 logged steps. log 2 = 0.693 is the loss of a model that "
                        "prefers neither reply; a margin near 0 means nothing was learned.")] if learned else []
        return extra + [
            Table("Attack success per family", ["model"] + families, fam_rows,
                  "Share of attacks the target answered without a refusal phrase (refusal detector), 95% bootstrap "
                  "over attacks of all seeds."),
            Table("Before and after the defence", ["model", "attacks", "success"], phases,
                  "old attacks: the static attacks that succeeded on the undefended model (same seed); train "
                  "behaviours were in the defence's training data, held-out ones never. New attacks: the attacker's "
                  "rewrites of what worked against the model under test."),
            Table("Over-refusal (alignment tax)", ["model", "harmless look-alikes answered", "harmful refused plainly"],
                  tax, "Shares of requests, 95% bootstrap over requests of all seeds; the harmless look-alikes "
                       "(XSTest-style: 'kill a Python process') cost the defence when it refuses them."),
            Table("Most effective attack methods (undefended)", ["family", "method", "success", "attacks"],
                  [[f, m, f"{sum(v) / len(v):.2f}", len(v)] for (f, m), v in top], ""),
            Table("Examples of successful attacks (undefended)", ["family", "prompt", "reply"],
                  [[a["family"], a["prompt"][:200], a["reply"][:160]] for a in wins], "")]

    def findings(self, records: list[RunRecord]) -> list[str]:
        out = []
        for r in records:
            m = r.metrics
            who = r.config.get(TECHNIQUE_KEY) or r.config["target"]
            out.append(f"{who} seed {r.seed}: refuses {m['specified']:.2f} of harmful requests asked plainly; attacks "
                       f"succeed {m['asr_static']:.2f} overall ({m['asr_heldout']:.2f} on held-out behaviours, "
                       f"{m.get('asr_declined', float('nan')):.2f} on the requests it refused plainly); adaptive "
                       f"{m.get('asr_adaptive', float('nan')):.2f}; answers {m['harmless_answered']:.2f} of harmless "
                       "look-alikes.")
        return out


def training_cells(t: dict[str, Any]) -> list[str]:
    """Report cells of a refusal-training record (techniques/refusal_training.py): pairs, steps, loss, margin."""
    def span(name: str) -> str:
        return f"{t[name + '_first']:.3f} → {t[name + '_last']:.3f}" if name + "_first" in t else "n/a"

    pairs = t.get("pairs", 0)
    return [f"{pairs} ({t.get('successful', 0)} / {t.get('benign_pairs', 0)})", str(t.get("logged_steps", "n/a")),
            span("loss"), span("margin"), f"{t['accuracy_last']:.2f}" if "accuracy_last" in t else "n/a",
            f"{t.get('train_seconds', 0):.0f}"]


def _mean(rs: list[RunRecord], key: str) -> float:
    vals = [r.metrics[key] for r in rs if key in r.metrics]
    return sum(vals) / len(vals) if vals else float("nan")
