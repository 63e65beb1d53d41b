"""Iterated amplification on permutation powering, beside supervised learning on ground truth, with noise injected
into the expert's sub-answers (Christiano, Shlegeris, Amodei 2018, "Supervising strong learners by amplifying weak
experts", arXiv:1810.08575).

A cell is one training method (amplification at one noise level, or supervised) and one seed (the permutation, the
initialisation and the questions). Specified and intended, in the lab's sense: the distilled model is trained to agree
with its overseer, the amplified expert (the expert asking the model's own answers), so `specified` is the share of
all questions on which the model agrees with the overseer's (noisy) answer; `intended` is the share it answers
correctly. For supervised learning the overseer is the ground truth itself. The cells of amplification also run the
whole decomposition tree without a model at their noise level, where each sub-answer error propagates upwards.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.core.errors import ConfigError
from alignlab.core.experiment import Experiment, ExperimentConfig
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.registry import register
from alignlab.core.section import Figure, Table, figure_svg, new_figure


@dataclasses.dataclass(frozen=True)
class AmplificationConfig(ExperimentConfig):
    n: int = 32
    """Elements permuted."""
    max_power: int = 63
    """Questions: sigma^k(x) for 1 <= k <= max_power (decomposition depth up to 10 at 63)."""
    noises: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2)
    """Probabilities that a sub-answer the expert receives is corrupted (one cell per noise kind each; 0: one cell)."""
    noise_kinds: tuple[str, ...] = ("random", "persistent")
    """random: each sub-answer independently replaced by a random element; persistent: a fixed share of subquestions
    always answered wrong (systematic error)."""
    supervised: bool = True
    """Also train the same model on ground-truth powers (the baseline)."""
    rounds: int = 24
    """Distillation rounds."""
    steps: int = 50
    """Optimiser steps of 256 questions per round."""
    hidden: int = 256
    """Hidden width of the model."""
    tree_repeats: int = 20
    """Repeats of every question for the decomposition tree without a model (its accuracy by depth)."""

    @classmethod
    def quick(cls) -> "AmplificationConfig":
        return cls(n=16, max_power=31, noises=(0.0, 0.1), rounds=18, steps=30, hidden=128, tree_repeats=10)

    @property
    def settings(self) -> list[tuple[float, str]]:
        """(noise, kind) of each amplification cell: noise 0 once, every other noise with every kind."""
        return [(float(p), kind) for p in self.noises for kind in (self.noise_kinds if p > 0 else ("random",))]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n < 2 or self.max_power < 1:
            raise ConfigError(f"amplification: n must be >= 2 and max_power >= 1 (got n={self.n}, "
                              f"max_power={self.max_power})")
        if not self.noises or any(not 0 <= p <= 1 for p in self.noises):
            raise ConfigError(f"amplification: noises {list(self.noises)} must be probabilities in [0, 1]")
        if not self.noise_kinds or any(k not in ("random", "persistent") for k in self.noise_kinds):
            raise ConfigError(f"amplification: noise_kinds {list(self.noise_kinds)}: valid kinds are random, "
                              "persistent")
        if min(self.rounds, self.steps, self.hidden, self.tree_repeats) < 1:
            raise ConfigError("amplification: rounds, steps, hidden and tree_repeats must be >= 1")


@register("experiment", "amplification-v0")
class Amplification(Experiment):
    title = "Iterated amplification: distilling a weak expert's decompositions (permutation powering)"
    summary = ("An expert who can only look up sigma(x) once answers sigma^k(x) by asking a model subquestions "
               "(squarings); the model is trained on the expert's answers, round by round. Does the distilled model "
               "learn the powers it never saw ground truth for, as well as supervised learning on ground truth does? "
               "And how do errors in sub-answers compound with the depth of the decomposition?")
    source = ("Christiano, Shlegeris, Amodei 2018, \"Supervising strong learners by amplifying weak experts\", "
              "arXiv:1810.08575 (permutation powering)")
    specified_label = "agreement with the overseer (the amplified expert's answers; ground truth for supervised)"
    intended_label = "accuracy on every question sigma^k(x)"
    tour = True
    Config = AmplificationConfig
    default_seeds = 3
    quick_seeds = 2

    @classmethod
    def smoke_config(cls) -> AmplificationConfig:
        return AmplificationConfig(n=8, max_power=7, noises=(0.0,), rounds=6, steps=10, hidden=64, tree_repeats=5)

    def cells(self) -> list[dict[str, Any]]:
        c = self.config
        base = {"n": c.n, "max_power": c.max_power, "rounds": c.rounds, "steps": c.steps, "hidden": c.hidden}
        out = [{**base, "method": "amplification", "noise": p, "noise_kind": kind, "tree_repeats": c.tree_repeats}
               for p, kind in c.settings]
        if c.supervised:
            out.append({**base, "method": "supervised", "noise": 0.0})
        return out

    def table_columns(self) -> list[str]:
        return ["method", "noise", "noise_kind"]

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        from alignlab.core.seeding import rng
        from alignlab.oversight import amplification as A

        s = A.AmplificationSettings(n=params["n"], max_power=params["max_power"], hidden=params["hidden"],
                                    rounds=params["rounds"], steps=params["steps"], noise=params["noise"],
                                    noise_kind=params.get("noise_kind", "random"))
        sigma = A.permutation(s.n, rng(seed, "amplification-sigma"))
        gen = rng(seed, "amplification", params["method"], str(params["noise"]))
        model, cost = A.train(s, sigma, params["method"], gen)
        x, k = A.all_questions(s)
        truth = A.powers(sigma, s.max_power)[k, x]
        answers = model.ask(x, k)
        overseer = truth if params["method"] == "supervised" else A.amplify(model.ask, sigma, x, k, cost["noise"])[0]
        m = {"intended": float((answers == truth).mean()), "specified": float((answers == overseer).mean()),
             "labels": float(cost["labels"]), "lookups": float(cost["lookups"])}
        m["gap"] = m["specified"] - m["intended"]
        by_depth = A.accuracy_by_depth(answers, truth, k)
        m.update({f"depth_{d}": v for d, v in by_depth.items()})
        if params["method"] == "amplification":   # the tree without a model, at the same noise
            reps = np.tile(np.arange(s.n), params["tree_repeats"])
            table = A.powers(sigma, s.max_power)
            tree = {p: float((A.recursive_answers(sigma, reps, p, cost["noise"]) == table[p, reps]).mean())
                    for p in range(1, s.max_power + 1)}
            per: dict[int, list[float]] = defaultdict(list)
            for p, acc in tree.items():
                per[A.depth(p)].append(acc)
            m.update({f"tree_depth_{d}": float(np.mean(v)) for d, v in per.items()})
        return CellResult(metrics=m, data={"curve": cost["curve"]})

    # -- report ----------------------------------------------------------------------------

    @staticmethod
    def _label(r: RunRecord) -> str:
        c = r.config
        if c["method"] == "supervised":
            return "supervised (ground truth)"
        return f"amplification, noise {c['noise']:g}" + (f" ({c.get('noise_kind', 'random')})" if c["noise"] else "")

    def _groups(self, records: list[RunRecord]) -> dict[tuple, list[RunRecord]]:
        out: dict[tuple, list[RunRecord]] = defaultdict(list)
        for r in records:
            out[(r.config["method"] == "amplification", r.config["noise"], r.config.get("noise_kind", ""))].append(r)
        return dict(sorted(out.items()))

    @staticmethod
    def _depths(records: list[RunRecord], prefix: str) -> list[int]:
        return sorted({int(k[len(prefix):]) for r in records for k in r.metrics if k.startswith(prefix)
                       and k[len(prefix):].isdigit()})

    def headline(self, records: list[RunRecord]) -> tuple[str, Any] | None:
        rs = [r for r in records if r.config["method"] == "amplification" and r.config["noise"] == 0]
        return ("accuracy of the model distilled from amplification, no noise", self.share(rs, "intended")) \
            if rs else None

    def tables(self, records: list[RunRecord]) -> list[Table]:
        depths = self._depths(records, "depth_")
        rows = []
        for _, rs in self._groups(records).items():
            rows.append([self._label(rs[0]), len(rs), self.share(rs, "intended").fmt(3),
                         f"{np.mean([r.metrics['labels'] for r in rs]):,.0f}",
                         f"{np.mean([r.metrics['lookups'] for r in rs]):,.0f}"]
                        + [f"{np.mean([r.metrics.get(f'depth_{d}', np.nan) for r in rs]):.2f}" for d in depths])
            if rs[0].config["method"] == "amplification":
                rows.append([f"  the tree without a model, {self._label(rs[0]).split(', ', 1)[1]}", len(rs), "", "", ""]
                            + [f"{np.mean([r.metrics.get(f'tree_depth_{d}', np.nan) for r in rs]):.2f}"
                               for d in depths])
        return [Table("Accuracy by decomposition depth", ["method", "seeds", "accuracy (all questions)",
                                                          "ground-truth labels", "expert lookups"]
                      + [f"depth {d}" for d in depths], rows,
                      "Depth: levels of squaring / one-step decomposition below sigma^k (0 = a lookup). Accuracy: "
                      "mean ± 95% t-interval over seeds; per-depth columns are means. The tree rows answer every "
                      "subquestion recursively, with the same noise, and no model.")]

    def findings(self, records: list[RunRecord]) -> list[str]:
        g = self._groups(records)
        out = []
        amp = g.get((True, 0.0, "random"))
        sup = next((rs for key, rs in g.items() if not key[0]), None)
        if amp and sup:
            out.append(f"Amplification without noise reaches {self.share(amp, 'intended').fmt(3)} accuracy with no "
                       f"ground-truth powers ({np.mean([r.metrics['lookups'] for r in amp]):,.0f} one-step lookups); "
                       f"supervised learning on {np.mean([r.metrics['labels'] for r in sup]):,.0f} ground-truth labels "
                       f"reaches {self.share(sup, 'intended').fmt(3)} (paper: amplification competitive with "
                       "supervised learning).")
        depths = self._depths(records, "tree_depth_")
        for (is_amp, noise, kind), rs in g.items():
            if is_amp and noise > 0 and depths:
                tree = [np.mean([r.metrics.get(f"tree_depth_{d}", np.nan) for r in rs]) for d in (1, depths[-1])]
                dist = [np.mean([r.metrics.get(f"depth_{d}", np.nan) for r in rs]) for d in (1, depths[-1])]
                out.append(f"Noise {noise:g} ({kind}) per sub-answer: the decomposition tree falls from "
                           f"{tree[0]:.2f} at depth 1 to {tree[1]:.2f} at depth {depths[-1]} (errors compound); the "
                           f"distilled model scores {dist[0]:.2f} and {dist[1]:.2f} there.")
        return out

    def figures(self, records: list[RunRecord]) -> list[Figure]:
        g = self._groups(records)
        depths = self._depths(records, "depth_")
        if not g or not depths:
            return []
        fig, axes = new_figure(width=4.2, height=2.8)
        ax = axes[0, 0]
        for i, ((is_amp, noise, kind), rs) in enumerate(g.items()):
            ax.plot(depths, [np.mean([r.metrics.get(f"depth_{d}", np.nan) for r in rs]) for d in depths], "o-",
                    color=f"C{i}", ms=3, label=self._label(rs[0]))
            if is_amp and noise > 0:
                ax.plot(depths, [np.mean([r.metrics.get(f"tree_depth_{d}", np.nan) for r in rs]) for d in depths],
                        "x:", color=f"C{i}", ms=3, label=f"tree, no model, noise {noise:g} ({kind})")
        ax.set_xlabel("decomposition depth", fontsize=7)
        ax.set_ylabel("accuracy", fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=5, frameon=False)
        ax.tick_params(labelsize=6)
        fig.tight_layout()
        return [Figure("Accuracy by decomposition depth and noise", figure_svg(fig),
                       "Solid: distilled models; dotted: the decomposition tree answered recursively without a model.")]
