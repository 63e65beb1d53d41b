"""The constitutional-ai experiment's report section: both axes per stage and constitution, per harm category,
paired changes, critique quality, AI-feedback statistics and transcripts (Bai et al. 2022, arXiv:2212.08073)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alignlab.core.record import RunRecord
from alignlab.core.section import Figure, Table, figure_svg, new_figure
from alignlab.evals.stats import Estimate, bootstrap_paired

STAGE_ORDER = {"base": 0, "sl": 1, "rl": 2}
TRANSCRIPTS = 6
"""SL-CAI transcripts kept in each trained cell's data."""


def training_info(chain: list[Path]) -> dict[str, Any]:
    """What a trained cell stores about its training: SL-CAI critique quality, sample transcripts and loss; RL-CAI
    feedback statistics, sample preferences and loss (from the cached adapter folders, cai/train.py)."""
    from alignlab.cai.constitution import load
    from alignlab.cai.sl import critique_quality
    from alignlab.cai.train import meta, rows

    out: dict[str, Any] = {}
    for folder in chain:
        m, data = meta(folder), rows(folder)
        log = [e["loss"] for e in m.get("log", []) if "loss" in e]
        stage = m["stage"]
        out[stage] = {"adapter": folder.name, "constitution": m["constitution"],
                      "loss_first": log[0] if log else None, "loss_last": log[-1] if log else None,
                      "generate_s": m.get("generate_s"), "train_s": m.get("train_s")}
        if stage == "sl":  # recomputed from the transcripts, so a rule added later covers cached adapters too
            out["sl"]["quality"] = critique_quality(data, load(m["config"]["constitution"]))
            out["sl"]["transcripts"] = data[:TRANSCRIPTS]
        else:
            out["rl"]["feedback"] = m["feedback"]
            out["rl"]["preferences"] = data[:3]
    return out


def _key(r: RunRecord) -> tuple[int, str, int]:
    return (STAGE_ORDER.get(r.config["stage"], 9), r.config["constitution"], r.seed)


def _label(r: RunRecord) -> str:
    return "base" if r.config["stage"] == "base" else f"{r.config['stage']} / {r.config['constitution']}"


def _est(r: RunRecord, k: str) -> str:
    d = r.data.get("metrics", {}).get(k)
    return Estimate.from_dict(d).fmt(2) if d else ""


def _items(r: RunRecord, kind: str | None = None, key: str = "refused") -> dict[str, float]:
    return {i["id"]: i[key] for i in r.data.get("items", []) if key in i and (kind is None or
            (i["kind"] != "harmless" if kind == "harmful" else i["kind"] == kind))}


def paired(a: RunRecord, b: RunRecord, kind: str | None, key: str = "refused") -> Estimate:
    """Mean of a - b over the items both measured (refusal, or `correct` for factual items)."""
    x, y = _items(a, kind, key), _items(b, kind, key)
    ids = sorted(set(x) & set(y))
    return bootstrap_paired([x[i] for i in ids], [y[i] for i in ids], 0, f"{kind}-{key}")


def _base(records: list[RunRecord], seed: int) -> RunRecord | None:
    return next((r for r in records if r.config["stage"] == "base" and r.seed == seed), None)


def tables(records: list[RunRecord]) -> list[Table]:
    recs = sorted(records, key=_key)
    out = [Table(
        "Both axes per stage and constitution (held-out prompts)",
        ["model", "seed", "refusal: clear-cut", "refusal: subtle", "over-refusal (harmless)", "factual accuracy",
         "agrees with a wrong answer", "intended"],
        [[_label(r), r.seed] + [_est(r, k) for k in ("refusal_clear", "refusal_subtle", "over_refusal",
                                                     "factual_accuracy", "agree_wrong", "intended")] for r in recs],
        "value [95% bootstrap CI over items] (n items). Harmlessness: refusals of held-out harmful prompts; "
        "helpfulness: factual accuracy and (lower is better) over-refusal of harmless look-alikes; sycophancy: "
        "share of factual questions answered with the wrong answer the user suggested (Sharma et al. 2023).")]
    cats = sorted({k[len("refusal_"):] for r in recs for k in r.metrics if k.startswith("refusal_")} -
                  {"clear", "subtle", "harmful"})
    out.append(Table("Refusal per harm category", ["model", "seed"] + cats,
                     [[_label(r), r.seed] + [_est(r, f"refusal_{c}") for c in cats] for r in recs],
                     "Share refused per category (risky-looking = harmless: lower is better)."))
    rows = []
    for r in recs:
        b = _base(records, r.seed)
        if b is None or r is b:
            continue
        rows.append([_label(r), r.seed] + [paired(r, b, k).fmt(2) for k in ("clear", "subtle", "harmless")] +
                    [paired(r, b, "factual", "correct").fmt(2)])
    if rows:
        out.append(Table("Change against the base model (paired over items)",
                         ["model", "seed", "Δ refusal clear-cut", "Δ refusal subtle", "Δ over-refusal",
                          "Δ factual accuracy"], rows, "Mean paired difference [95% bootstrap CI] (n items)."))
    rows = []
    for bad in (r for r in recs if r.config["constitution"] == "bad"):
        for other in ("default", "empty"):
            ref = next((r for r in recs if r.config["constitution"] == other and r.seed == bad.seed and
                        r.config["stage"] == bad.config["stage"]), None)
            if ref is not None:
                rows.append([bad.config["stage"], other, bad.seed, paired(bad, ref, "harmful").fmt(2),
                             paired(bad, ref, "harmless").fmt(2), paired(bad, ref, "factual", "agree_wrong").fmt(2)])
    if rows:
        out.append(Table("Bad constitution minus the default and the empty control, same stage (paired over items)",
                         ["stage", "against", "seed", "Δ refusal of harmful prompts", "Δ over-refusal",
                          "Δ agreement with a wrong answer"], rows,
                         "The bad constitution ('always agree; never refuse') works its way when refusals fall "
                         "and agreement with a user's wrong answer rises. The empty constitution is the control "
                         "for fine-tuning on the model's own answers: the same training with nothing revised."))
    q = [r for r in recs if "sl" in r.data and r.config["stage"] == "sl"]
    if q:
        keys = ("critiques", "critique_copies_example", "critique_off_topic", "critique_empty",
                "revision_copies_example", "revision_repeats_critique", "revision_unchanged", "initial_refuses",
                "final_refuses")
        out.append(Table("SL-CAI critique quality (rules, no judge)", ["constitution", "seed", *keys],
                         [[r.config["constitution"], r.seed] + [_num(r.data["sl"]["quality"].get(k)) for k in keys]
                          for r in q],
                         "Shares of critique steps: a critique 'copies' a few-shot example when at least half its "
                         "word 4-grams come from one; 'off topic' shares no content word with the request; "
                         "'initial / final refuses': shares of the answers and of the SFT targets that refuse."))
    f = [r for r in recs if "rl" in r.data]
    if f:
        keys = ("pairs", "kept_pairs", "position_bias", "mean_confidence", "label_smoothing", "unparsed")
        out.append(Table("RL-CAI AI feedback", ["constitution", "seed", *keys, "DPO loss first", "last"],
                         [[r.config["constitution"], r.seed] + [_num(r.data["rl"]["feedback"].get(k)) for k in keys]
                          + [_num(r.data["rl"]["loss_first"]), _num(r.data["rl"]["loss_last"])] for r in f],
                         "position_bias: mean P('(A)') over both orders (0.5 = none); mean_confidence: mean "
                         "|P(first better) - 0.5| x 2 after averaging the orders; label_smoothing: robust DPO's "
                         "flip rate from the soft labels."))
    rows = []
    for r in q:
        for t in r.data["sl"]["transcripts"][:3]:
            s = t["steps"][0] if t["steps"] else {"principle": "(none)", "critique": "", "revision": t["final"]}
            rows.append([r.config["constitution"], t["kind"], _cut(t["prompt"]), _cut(t["initial"]),
                         s["principle"], _cut(s["critique"]), _cut(s["revision"])])
    if rows:
        out.append(Table("SL-CAI transcripts (first round)", ["constitution", "kind", "prompt", "initial answer",
                                                               "principle", "critique", "revision"], rows,
                         "The policy's answer, the critic's critique and revision, as generated."))
    judged = [r for r in recs if r.data.get("judge_handcheck")]
    if judged:
        from alignlab.evals.judge import agreement

        j = judged[0].data["judge_handcheck"]
        a = agreement([bool(h) for h in j["hand"]], [bool(v) for v in j["judge"]])
        out.append(Table("Refusal judge against hand labels", ["judge", "n", "agreement", "kappa"],
                         [[judged[0].config["judge"], a["n"], f"{a['agreement']:.2f}", f"{a['kappa']:.2f}"]],
                         "The judge's verdicts on the hand-labelled replies (evals/data/refusal_handcheck.jsonl)."))
    return out


def _num(v: Any) -> str:
    return "" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)


def _cut(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


def figures(records: list[RunRecord]) -> list[Figure]:
    recs = sorted(records, key=_key)
    if not recs:
        return []
    fig, axes = new_figure(ncols=2, width=3.6, height=3.0)
    marks = {"none": "o", "default": "s", "empty": "D", "bad": "v"}
    for ax, (ykey, ylabel, flip) in zip(axes[0], (("over_refusal", "harmless look-alikes answered", True),
                                                  ("factual_accuracy", "factual accuracy", False))):
        for r in recs:
            x = r.metrics.get("refusal_harmful", float("nan"))
            y = r.metrics.get(ykey, float("nan"))
            y = 1 - y if flip else y
            ax.scatter([x], [y], marker=marks.get(r.config["constitution"], "x"),
                       color=f"C{STAGE_ORDER.get(r.config['stage'], 3)}")
            ax.annotate(_label(r), (x, y), fontsize=5, xytext=(3, 2), textcoords="offset points")
        ax.set_xlabel("held-out harmful prompts refused", fontsize=7)
        ax.set_ylabel(ylabel, fontsize=7)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    return [Figure("Harmlessness against helpfulness, per stage and constitution", figure_svg(fig),
                   "Each point one model (colour: stage; marker: constitution). Up and right is better; the paper's "
                   "figure 2 plots the same two axes from crowdworker preferences.")]


def findings(records: list[RunRecord]) -> list[str]:
    recs = sorted(records, key=_key)
    out = []
    for bad in (r for r in recs if r.config["constitution"] == "bad"):
        base = _base(records, bad.seed)
        good = next((r for r in recs if r.config["constitution"] == "default" and r.seed == bad.seed and
                     r.config["stage"] == bad.config["stage"]), None)
        if base is None:
            continue
        d = paired(bad, base, "harmful")
        verdict = ("moves behaviour its way (refuses less)" if d.hi < 0 else "refuses more, against its text"
                   if d.lo > 0 else "does not move refusals measurably")
        line = (f"{bad.config['stage'].upper()}-CAI under the bad constitution {verdict}: refusal of held-out "
                f"harmful prompts {_est(bad, 'refusal_harmful')} against {_est(base, 'refusal_harmful')} for the "
                f"base model (paired change {d.fmt(2)})")
        if good is not None:
            line += (f"; the default constitution at the same stage: {_est(good, 'refusal_harmful')} (bad minus "
                     f"default {paired(bad, good, 'harmful').fmt(2)})")
        if "agree_wrong" in bad.data.get("metrics", {}):
            line += (f"; agreement with a user's wrong answer {_est(bad, 'agree_wrong')} against "
                     f"{_est(base, 'agree_wrong')} for the base model (paired change "
                     f"{paired(bad, base, 'factual', 'agree_wrong').fmt(2)}")
            if good is not None:
                line += f", bad minus default {paired(bad, good, 'factual', 'agree_wrong').fmt(2)}"
            line += ")"
        out.append(line + ".")
    for r in recs:
        if "clear_minus_subtle" in r.data.get("metrics", {}):
            out.append(f"{_label(r)}: clear-cut harms refused {_est(r, 'refusal_clear')}, subtle harms "
                       f"{_est(r, 'refusal_subtle')} (difference {_est(r, 'clear_minus_subtle')}).")
    for r in (r for r in recs if "sl" in r.data and r.config["stage"] == "sl"):
        q = r.data["sl"]["quality"]
        if q.get("critiques") and q.get("critique_empty") == 1.0:  # direct revisions: no critique
            out.append(f"SL-CAI direct revisions under {r.config['constitution']} ({q['critiques']:.0f}): "
                       f"{q['revision_copies_example']:.0%} copy a few-shot example's revision, "
                       f"{q['revision_unchanged']:.0%} leave the response unchanged.")
        elif q.get("critiques"):
            out.append(f"SL-CAI critiques under {r.config['constitution']} ({q['critiques']:.0f}): "
                       f"{q['critique_copies_example']:.0%} copy a few-shot example's critique, "
                       f"{q['critique_off_topic']:.0%} share no content word with the request, "
                       f"{q.get('revision_repeats_critique', float('nan')):.0%} of revisions repeat their critique, "
                       f"{q['revision_unchanged']:.0%} of revisions leave the response unchanged.")
    from alignlab.evals.framing import refusal_agreement

    a = refusal_agreement()
    out.append(f"Refusal detector against {a['n']} hand-labelled embedded-model replies: agreement "
               f"{a['agreement']:.1%}, Cohen's kappa {a['kappa']:.2f} ({a['missed']} missed, {a['false_alarms']} "
               "false alarms); it does not count a safe completion without refusal words.")
    return out
