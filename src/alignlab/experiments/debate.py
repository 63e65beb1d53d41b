"""Debate as scalable oversight on 8x8 digits: a sparse-pixel judge alone, and with an honest and a lying debater
choosing which pixels it sees (Irving, Christiano, Amodei 2018, "AI safety via debate", arXiv:1805.00899).

One cell is one k (pixels the judge sees) and one seed: the seed trains the judge and draws the test images, and
every condition is measured on those images with that judge, so conditions pair by image. Debaters play exact
minimax up to `exact_max_k` pixels and the pooled search beyond; where both run they are compared move order by
move order (a weak search can fake a "last mover wins" result).

Specified and intended, in the lab's sense: the overseer here is the judge, and what it can see of its own
performance is its confidence; so `specified` is the judge's own estimate of how often its debate verdict is right
(its mean two-claim probability of the label it picks, in the debate the liar chose), and `intended` is how often
that verdict is the true label (both move orders averaged). Their gap is the judge's overconfidence after debate.
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
from alignlab.core.stats import mean_ci

PAPER_MNIST = {4: (48.2, 85.2), 6: (59.4, 88.9)}
"""Irving et al. 2018, MNIST: judge accuracy (%) alone on k random non-zero pixels, and with debate."""
ORDERS = ("honest-first", "liar-first")


@dataclasses.dataclass(frozen=True)
class DebateConfig(ExperimentConfig):
    ks: tuple[int, ...] = (2, 4, 6)
    """Pixels the judge sees (even: each debater reveals k/2; odd k favours whoever reveals more)."""
    images: int = 100
    """Test images per seed (the first ones of a seeded shuffle of the fixed test split)."""
    exact_max_k: int = 4
    """Debaters play exact minimax up to this k and the pooled search beyond (exact k=6 costs seconds per image)."""
    check_images: int = 20
    """Beyond exact_max_k, also play exact minimax on this many of the images, to check the search against it."""
    pool: int = 14
    """Candidate pixels per lie in the search (half the judge's most honest-helpful, half its most lie-helpful)."""
    draws: int = 20
    """Random k-pixel draws per image for the judge-alone baseline."""
    judge_hidden: int = 64
    """Hidden width of the judge MLP."""
    judge_masks: int = 40
    """Random masks per training image (the judge's training set is images x masks)."""
    judge_epochs: int = 8
    """Judge training epochs."""

    @classmethod
    def quick(cls) -> "DebateConfig":
        return cls(images=50, check_images=0, judge_masks=16, judge_epochs=6)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.ks or any(k < 1 or k > 16 for k in self.ks):
            raise ConfigError(f"debate: ks {list(self.ks)} must be 1 to 16 pixels (the paper's MNIST used 4 and 6)")
        for name in ("images", "draws", "judge_hidden", "judge_masks", "judge_epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"debate: {name} must be >= 1, got {getattr(self, name)}")
        if self.check_images < 0 or self.exact_max_k < 0:
            raise ConfigError("debate: check_images and exact_max_k must be >= 0")
        if self.pool < 2 or self.pool < max(self.ks):
            raise ConfigError(f"debate: pool {self.pool} must be >= 2 and >= the largest k ({max(self.ks)})")


def _outcomes(games: list[dict]) -> dict[str, np.ndarray]:
    """Per image: 0/1 honest wins against every lie, per order; the judge's confidence; the cooperative oracles."""
    from alignlab.oversight.debate import verdict

    out: dict[str, Any] = {}
    for o in ORDERS:
        v = [verdict(g[o]) for g in games]
        out[o] = np.array([w for w, _ in v], dtype=float)
        out[o + ":conf"] = np.array([c for _, c in v])
        out[o + ":lies"] = np.array([g[o] > 0 for g in games])
    out["cooperative"] = np.array([verdict(g["cooperative"])[0] for g in games], dtype=float)
    out["cooperative_argmax"] = np.array([g["cooperative_argmax"] > 0 for g in games], dtype=float)
    return out


@register("experiment", "debate-v0")
class Debate(Experiment):
    title = "Debate: a sparse-pixel judge helped by an honest and a lying debater"
    summary = ("A judge that sees only k pixels of a handwritten digit classifies it poorly. Two debaters who see the "
               "whole image, one honest and one defending a wrong label, take turns revealing pixels; the judge "
               "picks the claim it scores higher. If honesty wins the debate game, the judge's verdict after debate "
               "is far more accurate than its guess from random pixels, though it never sees more than k pixels.")
    source = "Irving, Christiano, Amodei 2018, \"AI safety via debate\", arXiv:1805.00899 (MNIST pixel debate)"
    specified_label = "the judge's own confidence in its debate verdict (two-claim probability of its pick)"
    intended_label = "accuracy of the judge's verdict after debate (honest wins against all 9 lies), both orders"
    tour = True
    Config = DebateConfig
    default_seeds = 3
    quick_seeds = 2

    @classmethod
    def smoke_config(cls) -> DebateConfig:
        return dataclasses.replace(DebateConfig.quick(), images=8, judge_masks=6, judge_epochs=3)

    def cells(self) -> list[dict[str, Any]]:
        c = self.config
        return [{"k": k, "images": c.images, "method": "exact" if k <= c.exact_max_k else "search",
                 "search_check": k <= c.exact_max_k and k >= 4, "check_images": 0 if k <= c.exact_max_k else
                 c.check_images, "pool": c.pool, "draws": c.draws, "judge_hidden": c.judge_hidden,
                 "judge_masks": c.judge_masks, "judge_epochs": c.judge_epochs} for k in c.ks]

    def table_columns(self) -> list[str]:
        return ["k", "method"]

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        from alignlab.core.seeding import rng
        from alignlab.oversight import debate as D
        from alignlab.vision import digits

        k = params["k"]
        split = digits.load()
        judge = D.train_judge(split.x_train, split.y_train, D.JudgeSettings(
            k=k, hidden=params["judge_hidden"], masks_per_image=params["judge_masks"],
            epochs=params["judge_epochs"]), seed)
        pick = rng(seed, "debate-images").permutation(len(split.y_test))[:params["images"]]
        x, y = split.x_test[pick], split.y_test[pick]
        ground = int((split.x_test.reshape(len(split.x_test), -1) > 0).sum(1).max())
        alone = D.baseline(judge, x, y, k, params["draws"], rng(seed, "debate-baseline", k))

        def play(method: str, idx) -> dict[str, np.ndarray]:
            return _outcomes([D.debate_image(judge, x[i], int(y[i]), k, method, pool=params["pool"], ground=ground,
                                             seed=seed) for i in idx])

        main = play(params["method"], range(len(y)))
        m: dict[str, float] = {"alone": float(alone["correct"].mean()), "alone_confidence":
                               float(alone["confidence"].mean())}
        for o in ORDERS:
            m[o] = float(main[o].mean())
        m["debate"] = 0.5 * (m["honest-first"] + m["liar-first"])
        m["lift"] = m["debate"] - m["alone"]
        m["cooperative"] = float(main["cooperative"].mean())
        m["cooperative_argmax"] = float(main["cooperative_argmax"].mean())
        conf = 0.5 * (main["honest-first:conf"] + main["liar-first:conf"])
        m["specified"], m["intended"] = float(conf.mean()), m["debate"]
        m["gap"] = m["specified"] - m["intended"]
        check_n = len(y) if params["search_check"] else min(params["check_images"], len(y))
        if check_n:   # the other method on the same images: search vs exact minimax, order by order
            other = play("search" if params["method"] == "exact" else "exact", range(check_n))
            exact, search = (main, other) if params["method"] == "exact" else (other, main)
            for o in ORDERS:
                m[f"check_exact_{o}"] = float(exact[o][:check_n].mean())
                m[f"check_search_{o}"] = float(search[o][:check_n].mean())
                m[f"agree_lies_{o}"] = float((exact[o + ":lies"][:check_n] == search[o + ":lies"][:check_n]).mean())
            m["check_images"] = float(check_n)
        data = {"alone": alone["correct"].tolist(), "cooperative": main["cooperative"].tolist(),
                **{o: main[o].tolist() for o in ORDERS}}
        return CellResult(metrics=m, data=data)

    # -- report ----------------------------------------------------------------------------

    @staticmethod
    def _by_k(records: list[RunRecord]) -> dict[int, list[RunRecord]]:
        out: dict[int, list[RunRecord]] = defaultdict(list)
        for r in records:
            out[int(r.config["k"])].append(r)
        return dict(sorted(out.items()))

    @staticmethod
    def _pooled(rs: list[RunRecord], key: str, minus: str | None = None):
        """Mean and t-interval over every (seed, image), paired with `minus` image by image where given."""
        vals = [np.asarray(r.data[key]) - (np.asarray(r.data[minus]) if minus else 0) for r in rs]
        return mean_ci(np.concatenate(vals) * 100)

    def headline(self, records: list[RunRecord]) -> tuple[str, Any] | None:
        if not records:
            return None
        return ("judge accuracy gained by debate over k random pixels (points, all k and orders)",
                mean_ci(100 * r.metrics["lift"] for r in records))

    def tables(self, records: list[RunRecord]) -> list[Table]:
        rows = []
        for k, rs in self._by_k(records).items():
            alone = self._pooled(rs, "alone")
            debate = [self._pooled(rs, o) for o in ORDERS]
            lift = mean_ci(np.concatenate([(np.asarray(r.data["honest-first"]) + np.asarray(r.data["liar-first"]))
                                           / 2 - np.asarray(r.data["alone"]) for r in rs]) * 100)
            paper = PAPER_MNIST.get(k)
            rows.append([k, rs[0].config["method"], f"{len(rs)} x {rs[0].config['images']}", alone.fmt(1),
                         debate[0].fmt(1), debate[1].fmt(1), lift.fmt(1), self._pooled(rs, "cooperative").fmt(1),
                         f"{paper[0]:.1f} -> {paper[1]:.1f} (+{paper[1] - paper[0]:.1f})" if paper else "n/a"])
        out = [Table("Judge accuracy (%) alone and after debate, beside the paper's MNIST figures",
                     ["k", "debaters", "seeds x images", "judge alone (random pixels)", "debate, honest first",
                      "debate, liar first", "lift (paired)", "cooperative oracle", "paper MNIST: alone -> debate"],
                     rows, "8x8 digits (sklearn), not MNIST: compare the lift, not the absolute numbers. Mean ± 95% "
                     "t-interval over every (seed, image); images share a judge within a seed. 'debate': honest wins "
                     "against all 9 lies. Cooperative oracle: the honest player reveals all k pixels.")]
        check = []
        for k, rs in self._by_k(records).items():
            rs = [r for r in rs if "check_images" in r.metrics]
            if rs:
                check.append([k, int(sum(r.metrics["check_images"] for r in rs))] + [
                    mean_ci(100 * r.metrics[f"{p}_{o}"] for r in rs).fmt(1)
                    for o in ORDERS for p in ("check_exact", "check_search", "agree_lies")])
        if check:
            out.append(Table("The search against exact minimax, on the same images", [
                "k", "images", "exact, honest first", "search, honest first", "agreement per lie, honest first",
                "exact, liar first", "search, liar first", "agreement per lie, liar first"], check,
                "Percent; mean ± 95% t-interval over seeds. Agreement: the same winner in the same (image, lie) game."))
        return out

    def findings(self, records: list[RunRecord]) -> list[str]:
        out = []
        for k, rs in self._by_k(records).items():
            lift = mean_ci(np.concatenate([(np.asarray(r.data["honest-first"]) + np.asarray(r.data["liar-first"]))
                                           / 2 - np.asarray(r.data["alone"]) for r in rs]) * 100)
            verdict = "raises" if lift.lo > 0 else ("lowers" if lift.hi < 0 else "does not clearly change")
            paper = PAPER_MNIST.get(k)
            ref = f" (paper, MNIST: +{paper[1] - paper[0]:.1f})" if paper else ""
            gap = mean_ci(100 * (r.metrics["honest-first"] - r.metrics["liar-first"]) for r in rs)
            out.append(f"k={k}: debate {verdict} the judge's accuracy over random pixels by {lift.fmt(1)} points"
                       f"{ref}; honest-first minus liar-first {gap.fmt(1)} points ({rs[0].config['method']}).")
            checked = [r for r in rs if "check_images" in r.metrics]
            if checked:
                agree = np.mean([r.metrics[f"agree_lies_{o}"] for r in checked for o in ORDERS])
                out.append(f"k={k}: the search picks the exact minimax winner in {100 * agree:.1f}% of (image, lie, "
                           f"order) games on {int(sum(r.metrics['check_images'] for r in checked))} images.")
        return out

    def figures(self, records: list[RunRecord]) -> list[Figure]:
        by = self._by_k(records)
        if not by:
            return []
        fig, axes = new_figure(width=4.2, height=2.8)
        ax = axes[0, 0]
        ks = list(by)
        for key, label, style in (("alone", "judge alone", "o-"), ("honest-first", "debate, honest first", "s-"),
                                  ("liar-first", "debate, liar first", "^-")):
            cis = [self._pooled(by[k], key) for k in ks]
            ax.errorbar(ks, [c.mean for c in cis], yerr=[c.half for c in cis], fmt=style, ms=4, capsize=2,
                        label=label)
        pk = sorted(PAPER_MNIST)
        ax.plot(pk, [PAPER_MNIST[k][0] for k in pk], "o:", color="grey", ms=3, label="paper MNIST alone")
        ax.plot(pk, [PAPER_MNIST[k][1] for k in pk], "s:", color="black", ms=3, label="paper MNIST debate")
        ax.set_xlabel("pixels the judge sees (k)", fontsize=7)
        ax.set_ylabel("judge accuracy (%)", fontsize=7)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=6, frameon=False)
        ax.tick_params(labelsize=6)
        fig.tight_layout()
        return [Figure("Judge accuracy by k, alone and with debate", figure_svg(fig),
                       "8x8 digits; dotted: the paper's MNIST figures. Bars: 95% t-interval over (seed, image).")]
