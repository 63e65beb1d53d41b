"""The steering experiment's report: the sweep table, the steering curves (rate and accuracy against the
multiplier, per layer, beside the random vector and the prompting baseline) and the findings (Rimsky et al. 2023,
arXiv:2312.06681)."""

from __future__ import annotations

from collections import defaultdict
from alignlab.core.experiment import TECHNIQUE_KEY
from alignlab.core.record import RunRecord
from alignlab.core.section import Figure, Table, figure_svg, new_figure

PANELS = (("agree_wrong", "sycophancy rate\n(replies naming the wrong suggestion)"),
          ("accuracy_none", "plain factual accuracy"),
          ("ab_p_syc", "A/B: P(sycophantic letter)"))


def _ci(m: dict[str, float], key: str) -> str:
    return f"{m[key]:.3f} [{m[key + '_lo']:.3f}, {m[key + '_hi']:.3f}]" if key in m else "n/a"


def _label(r: RunRecord) -> str:
    tech = r.config.get(TECHNIQUE_KEY)
    if tech:
        return tech
    c = r.config
    return "unsteered" if c["vector"] == "none" else f"{c['vector']} L{c['layer']} x{c['multiplier']:g}"


def _baseline(records: list[RunRecord]) -> RunRecord | None:
    return next((r for r in records if r.config.get("vector") == "none" and not r.config.get(TECHNIQUE_KEY)), None)


def sweep_table(records: list[RunRecord]) -> Table:
    base = _baseline(records)
    rows = []
    def key(r: RunRecord) -> tuple:
        return (r.config.get(TECHNIQUE_KEY) or "", r.config["vector"] != "none", r.config["vector"],
                r.config.get("layer") or 0, r.config["multiplier"])

    for r in sorted(records, key=key):
        m = r.metrics
        below = "" if base is None or r is base else (
            "yes" if m["agree_wrong_hi"] < base.metrics["agree_wrong_lo"] else "no")
        rows.append([_label(r), _ci(m, "agree_wrong"), below, _ci(m, "accuracy_none"), _ci(m, "accuracy_wrong"),
                     _ci(m, "ab_p_syc"), f"{m.get('vector_norm', float('nan')):.2f}", int(m["n_items"])])
    return Table("Held-out sycophancy and accuracy per steering setting",
                 ["model", "sycophancy rate", "interval below unsteered", "plain accuracy", "accuracy under wrong "
                  "suggestion", "A/B P(sycophantic)", "vector norm", "items"], rows,
                 "Held-out factual items (never used for the vector); 95% bootstrap intervals over items. 'interval "
                 "below unsteered': the whole interval lies under the unsteered model's interval.")


def _series(records: list[RunRecord]) -> dict[tuple[str, int], list[RunRecord]]:
    out: dict[tuple[str, int], list[RunRecord]] = defaultdict(list)
    for r in records:
        if r.config["vector"] != "none" and not r.config.get(TECHNIQUE_KEY):
            out[(r.config["vector"], r.config["layer"])].append(r)
    return out


def curves_figure(records: list[RunRecord]) -> Figure | None:
    base = _baseline(records)
    series = _series(records)
    if base is None or not series:
        return None
    prompts = [r for r in records if r.config.get(TECHNIQUE_KEY)]
    layers = sorted({layer for _, layer in series})
    fig, axes = new_figure(ncols=len(PANELS), width=3.6, height=2.9)
    for col, (metric, label) in enumerate(PANELS):
        ax = axes[0, col]
        for k, layer in enumerate(layers):
            for vector, style in (("caa", "-"), ("random", ":")):
                rs = sorted(series.get((vector, layer), []) + [base], key=lambda r: r.config["multiplier"])
                if len(rs) < 2:
                    continue
                xs = [r.config["multiplier"] for r in rs]
                ys = [r.metrics[metric] for r in rs]
                err = [[y - r.metrics[metric + "_lo"] for y, r in zip(ys, rs)],
                       [r.metrics[metric + "_hi"] - y for y, r in zip(ys, rs)]]
                ax.errorbar(xs, ys, yerr=err, fmt="o" + style, ms=3, lw=1, capsize=2, color=f"C{k}",
                            alpha=1.0 if vector == "caa" else 0.45,
                            label=f"layer {layer}" if vector == "caa" else (f"random, layer {layer}"
                                                                               if k == 0 else None))
        for j, p in enumerate(prompts):  # each other chat-model technique: its own line style and grey
            shade = str(0.55 * j / max(1, len(prompts) - 1))
            ax.axhline(p.metrics[metric], color=shade, ls=("--", "-.", (0, (1, 1)))[j % 3], lw=0.8,
                       label=p.config[TECHNIQUE_KEY])
            ax.axhspan(p.metrics[metric + "_lo"], p.metrics[metric + "_hi"], color=shade, alpha=0.07)
        ax.set_xlabel("multiplier (0 = unsteered)", fontsize=7)
        ax.set_ylabel(label, fontsize=7)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=6)
        if col == 0:
            ax.legend(fontsize=5, frameon=False)
    fig.tight_layout()
    return Figure("Steering curves: sycophancy, accuracy and the A/B measure against the multiplier",
                  figure_svg(fig), "Solid: the CAA vector per layer; dotted: a random vector of equal norm; "
                  "horizontal lines and bands: the other chat-model techniques (the anti-sycophancy system prompt, "
                  "SAE feature steering) on the unsteered model. Error bars: 95% bootstrap intervals over held-out "
                  "items.")


def findings(records: list[RunRecord]) -> list[str]:
    base = _baseline(records)
    if base is None:
        return []
    b = base.metrics
    out = [f"Unsteered, held out: sycophancy rate {_ci(b, 'agree_wrong')}, plain accuracy {_ci(b, 'accuracy_none')}, "
           f"A/B P(sycophantic) {_ci(b, 'ab_p_syc')} ({int(b['n_items'])} items)."]
    for p in (r for r in records if r.config.get(TECHNIQUE_KEY)):
        m = p.metrics
        out.append(f"{p.config[TECHNIQUE_KEY]}: sycophancy rate {_ci(m, 'agree_wrong')}, plain accuracy "
                   f"{_ci(m, 'accuracy_none')} (cost {b['accuracy_none'] - m['accuracy_none']:+.3f}).")
    steered = [r for r in records if r.config["vector"] == "caa" and not r.config.get(TECHNIQUE_KEY)]
    wins = [r for r in steered if r.metrics["agree_wrong_hi"] < b["agree_wrong_lo"]]
    random = {(r.config["layer"], r.config["multiplier"]): r for r in records if r.config["vector"] == "random"}
    if wins:
        best = min(wins, key=lambda r: (b["accuracy_none"] - r.metrics["accuracy_none"], r.metrics["agree_wrong"]))
        m = best.metrics
        ctrl = random.get((best.config["layer"], best.config["multiplier"]))
        ctrl_text = (f"; the random vector of equal norm there: {_ci(ctrl.metrics, 'agree_wrong')}, plain accuracy "
                     f"{_ci(ctrl.metrics, 'accuracy_none')}") if ctrl else ""
        cost = b["accuracy_none"] - m["accuracy_none"]
        out.append(f"{len(wins)} of {len(steered)} CAA settings lower the sycophancy rate with an interval below the "
                   f"unsteered one. The cheapest in accuracy: {_label(best)}: rate {_ci(m, 'agree_wrong')}, plain "
                   f"accuracy {_ci(m, 'accuracy_none')} (cost {cost:+.3f}){ctrl_text}.")
    elif steered:
        lowest = min(steered, key=lambda r: r.metrics["agree_wrong"])
        out.append(f"No CAA setting of the {len(steered)} swept lowers the held-out sycophancy rate with an interval "
                   f"below the unsteered one; the lowest is {_label(lowest)} at {_ci(lowest.metrics, 'agree_wrong')} "
                   f"(plain accuracy {_ci(lowest.metrics, 'accuracy_none')}). The full sweep is in the table.")
    return out
