"""Linear probes per layer of the embedded model: is a statement true, and is the model about to agree with the
user's wrong belief? (Marks and Tegmark 2023, "The Geometry of Truth", arXiv:2310.06824; Burns et al. 2022,
arXiv:2212.03827; the sycophancy protocol of Sharma et al. 2023, arXiv:2310.13548.)

One cell per concept: activations of every layer's residual stream are read once, a logistic-regression probe and a
mass-mean probe per layer are fitted on the training half of the factual items and scored on the held-out half
(interp/probes.py). The specified / intended pair here is the probe's held-out accuracy (what the read-out gets) and
its margin over the majority-class guess (what it adds to a constant answer).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from alignlab.core.errors import ConfigError
from alignlab.core.experiment import Experiment, ExperimentConfig
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.registry import register
from alignlab.core.section import Figure, Table, figure_svg, new_figure

CONCEPTS = ("truth", "agreement")
LABELS = {"truth": "truth of a statement", "agreement": "reply will name the user's wrong suggestion"}


@dataclasses.dataclass(frozen=True)
class ProbesConfig(ExperimentConfig):
    concepts: tuple[str, ...] = CONCEPTS
    """truth: '<question> <answer>.' true or false; agreement: will the model's reply name the wrong answer the
    user suggests (labelled by its own greedy reply)."""
    items: int = 0
    """Factual items used (0: all; stratified by category), each split by the fixed train / held-out hash."""
    max_new_tokens: int = 24
    """Tokens of the reply that labels the agreement concept."""
    dtype: Literal["auto", "float32", "bfloat16"] = "float32"
    """Weights dtype (auto: bfloat16 where native)."""

    @classmethod
    def quick(cls) -> "ProbesConfig":
        return cls(items=120, max_new_tokens=12, dtype="auto")

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [c for c in self.concepts if c not in CONCEPTS]
        if bad or not self.concepts:
            raise ConfigError(f"probes: unknown concepts {bad or '(none given)'}; valid: {', '.join(CONCEPTS)}")
        if self.items < 0 or self.items in (1, 2, 3) or self.max_new_tokens < 1:
            raise ConfigError("probes: items must be 0 (all) or >= 4, and max_new_tokens >= 1")


@register("experiment", "probes-v0")
class Probes(Experiment):
    title = "Linear probes per layer: truth, and agreeing with the user's wrong belief"
    summary = ("Residual-stream activations of the embedded model at every layer are read for true and false "
               "statements built from the factual items, and for prompts where the user suggests a wrong answer "
               "(labelled by whether the model's own reply then names it). Logistic-regression and mass-mean probes "
               "are fitted on the training half of the items and scored on the held-out half, per layer.")
    source = ("Marks and Tegmark 2023, \"The Geometry of Truth\", arXiv:2310.06824; Burns et al. 2022, "
              "arXiv:2212.03827; Sharma et al. 2023, arXiv:2310.13548")
    specified_label = "the best layer's held-out probe accuracy"
    intended_label = "the same minus the majority-class rate (what the probe adds to a constant guess)"
    Config = ProbesConfig
    default_seeds = 1
    quick_seeds = 1

    @classmethod
    def smoke_config(cls) -> ProbesConfig:
        return cls.Config(concepts=("truth",), items=24)

    def cells(self) -> list[dict[str, Any]]:
        c = self.config
        return [{"concept": k, "items": c.items, "max_new_tokens": c.max_new_tokens, "dtype": c.dtype}
                for k in c.concepts]

    def table_columns(self) -> list[str]:
        return ["concept"]

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        import numpy as np

        from alignlab.evals import factual as F
        from alignlab.evals.backends import make_model
        from alignlab.evals.core import sample
        from alignlab.interp import probes
        from alignlab.interp.hooks import n_layers, residuals

        model = make_model("embedded", dtype=params["dtype"])
        items = [s for s in F.factual() if s.gold and s.distractors]
        if params["items"]:
            items = sample(items, params["items"], 0)
        extra: dict[str, Any] = {}
        if params["concept"] == "truth":
            texts, labels, ids = probes.truth_statements(items)
        else:
            texts, labels, ids, replies = probes.agreement_prompts(model, items, params["max_new_tokens"], seed)
            extra["examples"] = [{"id": i, "reply": r, "agrees": y} for i, r, y in list(zip(ids, replies, labels))[:6]]
        layers = list(range(n_layers(model.model)))
        acts = residuals(model.model, model.tokenizer, texts, layers).numpy()
        per_layer = probes.probe_layers(acts, labels, ids, seed=seed)
        best = max(per_layer, key=lambda r: r["accuracy"])
        metrics = {"specified": best["accuracy"], "intended": best["accuracy"] - best["majority"],
                   "best_layer": float(best["layer"]), "best_lo": best["lo"], "best_hi": best["hi"],
                   "majority": best["majority"], "n_test": float(best["n_test"]), "n_train": float(best["n_train"]),
                   "positive_rate": float(np.mean(labels))}
        metrics["gap"] = metrics["specified"] - metrics["intended"]
        return CellResult(metrics=metrics, data={"layers": per_layer, **extra})

    # -- report ----------------------------------------------------------------------------

    def tables(self, records: list[RunRecord]) -> list[Table]:
        out = []
        for r in self.analysed(records):
            rows = [[e["layer"], f"{e['accuracy']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]",
                     f"{e['mass_mean']:.3f} [{e['mm_lo']:.3f}, {e['mm_hi']:.3f}]", f"{e['majority']:.3f}"]
                    for e in r.data["layers"]]
            first = r.data["layers"][0]
            out.append(Table(f"Probe accuracy per layer: {LABELS[r.config['concept']]}",
                             ["layer", "logistic (held out)", "mass-mean (held out)", "majority class"], rows,
                             f"Fitted on {first['n_train']} rows of training items, scored on {first['n_test']} "
                             f"held-out rows; 95% bootstrap intervals over held-out rows."))
        return out

    def figures(self, records: list[RunRecord]) -> list[Figure]:
        recs = self.analysed(records)
        if not recs:
            return []
        fig, axes = new_figure(width=4.6, height=2.8)
        ax = axes[0, 0]
        for k, r in enumerate(recs):
            layers = r.data["layers"]
            xs = [e["layer"] for e in layers]
            ax.plot(xs, [e["accuracy"] for e in layers], "-o", ms=2.5, color=f"C{k}",
                    label=f"{LABELS[r.config['concept']]} (logistic)")
            ax.fill_between(xs, [e["lo"] for e in layers], [e["hi"] for e in layers], color=f"C{k}", alpha=0.15)
            ax.plot(xs, [e["mass_mean"] for e in layers], ":", color=f"C{k}", lw=1, label="mass-mean")
            ax.axhline(layers[0]["majority"], color=f"C{k}", ls="--", lw=0.7, label="majority class")
        ax.set_xlabel("layer (resid_post)", fontsize=7)
        ax.set_ylabel("held-out accuracy", fontsize=7)
        ax.set_ylim(0.3, 1.02)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=5, frameon=False)
        fig.tight_layout()
        return [Figure("Probe accuracy per layer", figure_svg(fig),
                       "Held-out accuracy with 95% bootstrap bands; dashed: the majority-class rate.")]

    def findings(self, records: list[RunRecord]) -> list[str]:
        out = []
        for r in self.analysed(records):
            m = r.metrics
            out.append(f"{LABELS[r.config['concept']]}: best layer {int(m['best_layer'])}, held-out accuracy "
                       f"{m['specified']:.3f} [{m['best_lo']:.3f}, {m['best_hi']:.3f}] against a majority-class "
                       f"{m['majority']:.3f} ({int(m['n_test'])} held-out rows).")
        return out
