"""Adversarial examples and adversarial training: robust accuracy against epsilon of a standard and an
adversarially trained classifier on sklearn's 8x8 digits (or a user's tensors), under FGSM and PGD in L-infinity
and L2 (Goodfellow et al. 2015, arXiv:1412.6572; Madry et al. 2018, arXiv:1706.06083).

The specified objective is what training optimises and what a test set shows: clean test accuracy. The intended
one is the behaviour we want under the inputs an adversary can reach: accuracy under PGD at the experiment's
reference epsilon (`ref_eps_linf` or `ref_eps_l2`, the `threat` norm). The `classifier-training` slot takes
`adversarial-training`; its benefit is robust accuracy gained, its alignment tax the clean accuracy lost. Every
cell also runs torchattacks' PGD on the same model and inputs and records how far its robust accuracy is from ours.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

import numpy as np

from alignlab.core.errors import ConfigError
from alignlab.core.experiment import TECHNIQUE_KEY, Experiment, ExperimentConfig
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.registry import register
from alignlab.core.section import Figure, Table, figure_svg, new_figure
from alignlab.core.seeding import rng
from alignlab.core.stats import MeanCI, mean_ci
from alignlab.core.technique import make_technique
from alignlab.robustness import data as rdata
from alignlab.robustness import evaluate
from alignlab.robustness.attacks import robust_accuracy
from alignlab.techniques.adversarial_training import AdversarialTrainingConfig
from alignlab.core.threads import one_thread
from alignlab.robustness.training import Recipe, train

STANDARD = "standard"
NORMS = ("linf", "l2")
NORM_LABEL = {"linf": "L-infinity", "l2": "L2"}


@dataclasses.dataclass(frozen=True)
class AdversarialExamplesConfig(ExperimentConfig):
    data: str = "digits"
    """`digits` (sklearn's 8x8 digits, fixed split) or a .pt / .npz file holding `x` (floats in [0, 1]) and `y`
    (integer labels), optionally `x_test` and `y_test`."""
    arch: Literal["mlp", "cnn"] = "mlp"
    """Classifier: mlp (two hidden layers of `hidden` units) or cnn (two 3x3 convolutions, one linear layer)."""
    hidden: int = 64
    """Hidden units of the mlp, channels of the cnn's first convolution."""
    epochs: int = 30
    """Training epochs (Adam, lr 3e-3, batch 64)."""
    eps_linf: tuple[float, ...] = (0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3)
    """L-infinity radii swept (pixel units; the digits have 17 grey levels, 1/16 apart)."""
    eps_l2: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
    """L2 radii swept."""
    ref_eps_linf: float = 0.1
    """The reference L-infinity radius (one of eps_linf): the intended objective when threat=linf."""
    ref_eps_l2: float = 0.5
    """The reference L2 radius (one of eps_l2): the intended objective when threat=l2."""
    threat: Literal["linf", "l2"] = "linf"
    """Which norm's reference radius defines the intended objective (robust accuracy there)."""
    pgd_steps: int = 20
    """PGD iterations of the evaluation attack (step 2.5 eps / steps)."""
    restarts: int = 1
    """PGD random restarts of the evaluation attack (the worst per example counts)."""
    cross_check: bool = True
    """Also run torchattacks' PGD (one random start) at every radius and record the difference from ours."""
    tolerance: float = 0.03
    """Largest |our robust accuracy - torchattacks'| at one radius that counts as agreement."""
    techniques: tuple[str, ...] = ("adversarial-training-v0", "adversarial-training-v0(eps=0.2)",
                                   "adversarial-training-v0(eps=0.5, norm=l2)")

    @classmethod
    def quick(cls) -> "AdversarialExamplesConfig":
        return cls(eps_linf=(0.0, 0.05, 0.1, 0.2), eps_l2=(0.0, 0.5, 1.0), pgd_steps=10)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.arch not in ("mlp", "cnn"):
            raise ConfigError(f"adversarial-examples: arch must be mlp or cnn (got {self.arch!r})")
        if self.threat not in NORMS:
            raise ConfigError(f"adversarial-examples: threat must be linf or l2 (got {self.threat!r})")
        if self.hidden < 1 or self.epochs < 1 or self.pgd_steps < 1 or self.restarts < 1 or not self.tolerance > 0:
            raise ConfigError("adversarial-examples: hidden, epochs, pgd_steps, restarts must be >= 1, tolerance > 0")
        for norm, eps, ref in (("linf", self.eps_linf, self.ref_eps_linf), ("l2", self.eps_l2, self.ref_eps_l2)):
            if not eps or any(not e >= 0 for e in eps) or list(eps) != sorted(set(eps)):
                raise ConfigError(f"adversarial-examples: eps_{norm} must be distinct radii >= 0 in increasing order "
                                  f"(got {eps})")
            if ref not in eps:
                raise ConfigError(f"adversarial-examples: ref_eps_{norm}={ref} must be one of eps_{norm} {eps}")
        rdata.load(self.data)  # a bad file is refused here, before anything runs


def build_model(arch: str, hidden: int, shape: tuple[int, ...], n_classes: int, seed: int) -> Any:
    from alignlab.vision import digits

    if arch == "cnn":
        return digits.cnn(channels=shape[0], n_classes=n_classes, width=hidden, seed=seed)
    return digits.mlp(hidden=hidden, in_features=int(np.prod(shape)), n_classes=n_classes, seed=seed)


def model_label(params: dict[str, Any]) -> str:
    """`standard`, or the adversarial training's norm and radius (e.g. `AT L-infinity 0.1`), or the spec."""
    spec = params.get(TECHNIQUE_KEY)
    if not spec:
        return STANDARD
    tech = make_technique(spec)
    if not isinstance(tech.config, AdversarialTrainingConfig):
        return spec
    c, default = tech.config, AdversarialTrainingConfig()
    others = [f"{f.name}={getattr(c, f.name)}" for f in dataclasses.fields(c)
              if f.name not in ("norm", "eps") and getattr(c, f.name) != getattr(default, f.name)]
    return f"AT {NORM_LABEL[c.norm]} {c.eps:g}" + (f" ({', '.join(others)})" if others else "")


@register("experiment", "adversarial-examples-v0")
class AdversarialExamples(Experiment):
    title = "Adversarial examples and adversarial training"
    summary = ("A small classifier trained on clean digits scores well on the test set (the specified objective) "
               "and fails on inputs moved by an imperceptible, worst-case perturbation (the intended objective: "
               "accuracy under attack). Robust accuracy is swept against the perturbation budget under FGSM and "
               "PGD in L-infinity and L2, for the standard model and for adversarially trained ones, with the "
               "clean accuracy adversarial training costs; torchattacks' PGD cross-checks ours.")
    source = ("Madry et al. 2018, \"Towards Deep Learning Models Resistant to Adversarial Attacks\", "
              "arXiv:1706.06083; Goodfellow, Shlens, Szegedy 2015, \"Explaining and Harnessing Adversarial "
              "Examples\", arXiv:1412.6572")
    specified_label = "clean test accuracy"
    intended_label = "accuracy under PGD at the reference radius"
    Config = AdversarialExamplesConfig
    slots = ("classifier-training",)
    failure_mode = "adversarial vulnerability"
    benefit_label = "robust accuracy at the reference radius"
    capability_label = "clean accuracy"
    reads_technique_cells = True  # the curves set each trained model beside the standard one
    default_seeds = 5
    quick_seeds = 3

    @classmethod
    def smoke_config(cls) -> AdversarialExamplesConfig:
        return cls.Config(eps_linf=(0.0, 0.1), eps_l2=(0.0, 0.5), pgd_steps=5, epochs=10, techniques=())

    def cells(self) -> list[dict[str, Any]]:
        c = self.config
        keys = ("data", "arch", "hidden", "epochs", "eps_linf", "eps_l2", "ref_eps_linf", "ref_eps_l2", "threat",
                "pgd_steps", "restarts", "cross_check", "tolerance")
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in ((k, getattr(c, k)) for k in keys)}
        return [{**params, "data_digest": rdata.load(c.data).digest}]

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        with one_thread():
            return self._run_cell(params, seed)

    def _run_cell(self, params: dict[str, Any], seed: int) -> CellResult:
        ds = rdata.load(params["data"])
        if ds.digest != params["data_digest"]:
            raise ConfigError(f"adversarial-examples: {params['data']} changed since the grid was built")
        x_train, y_train, x_test, y_test = ds.tensors()
        recipe = Recipe(epochs=params["epochs"])
        tech = self.technique(params, "classifier-training")
        if tech is not None:
            recipe = tech.apply(recipe)
        model = build_model(params["arch"], params["hidden"], ds.shape, ds.n_classes, seed)
        train(model, x_train, y_train, recipe, seed)
        attack_seed = int(rng(seed, "adversarial-examples-attack").integers(2**31))
        metrics: dict[str, float] = {}
        curves: dict[str, Any] = {}
        for norm in NORMS:
            eps = params[f"eps_{norm}"]
            curve = evaluate.sweep(model, x_test, y_test, norm, eps, steps=params["pgd_steps"],
                                   restarts=params["restarts"], seed=attack_seed)
            ref = eps.index(params[f"ref_eps_{norm}"])
            metrics[f"pgd_{norm}"], metrics[f"fgsm_{norm}"] = curve["pgd"][ref], curve["fgsm"][ref]
            if params["cross_check"]:
                ours = curve["pgd"] if params["restarts"] == 1 else evaluate.sweep(
                    model, x_test, y_test, norm, eps, steps=params["pgd_steps"], seed=attack_seed)["pgd"]
                # independent random starts (another seed): agreement in distribution, not one shared draw
                lib = evaluate.cross_check(model, x_test, y_test, norm, eps, steps=params["pgd_steps"],
                                           seed=attack_seed + 1)
                if lib is not None:
                    curve["ours_one_start"], curve["library"] = ours, lib
                    metrics[f"xcheck_{norm}"] = max(abs(a - b) for a, b in zip(ours, lib))
            curves[norm] = curve
        clean = robust_accuracy(model, x_test, y_test)
        intended = metrics[f"pgd_{params['threat']}"]
        metrics.update(specified=clean, intended=intended, gap=clean - intended, clean=clean)
        return CellResult(metrics=metrics, data={"curves": curves, "library": evaluate.library_version()})

    # -- report ----------------------------------------------------------------------------

    @staticmethod
    def _by_model(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
        out: dict[str, list[RunRecord]] = defaultdict(list)
        for r in records:
            if r.status == "ok" and "curves" in r.data:
                out[model_label(r.config)].append(r)
        return dict(sorted(out.items(), key=lambda kv: (kv[0] != STANDARD, kv[0])))

    @staticmethod
    def _paired(base: list[RunRecord], other: list[RunRecord], metric: str) -> MeanCI:
        """Mean and 95% interval of other - base, paired on seed."""
        by_seed = {r.seed: r.metrics[metric] for r in base}
        return mean_ci(r.metrics[metric] - by_seed[r.seed] for r in other if r.seed in by_seed)

    def headline(self, records: list[RunRecord]) -> tuple[str, MeanCI] | None:
        base = self._by_model(records).get(STANDARD)
        if not base:
            return None
        c = base[0].config
        ref = c[f"ref_eps_{c['threat']}"]
        return f"standard classifier's accuracy under PGD ({NORM_LABEL[c['threat']]} eps={ref:g})", \
            self.share(base, "intended")

    def tables(self, records: list[RunRecord]) -> list[Table]:
        by = self._by_model(records)
        if not by:
            return []
        out = []
        for norm in NORMS:
            eps = next(iter(by.values()))[0].config[f"eps_{norm}"]
            rows = []
            for label, rs in by.items():
                for attack in ("pgd", "fgsm"):
                    rows.append([label, attack.upper(), len(rs)] + [
                        mean_ci(r.data["curves"][norm][attack][i] for r in rs).fmt(3) for i in range(len(eps))])
            out.append(Table(f"Accuracy under attack against {NORM_LABEL[norm]} radius",
                             ["model", "attack", "seeds"] + [f"eps={e:g}" for e in eps], rows,
                             "Test accuracy of each model on adversarial inputs, mean ± 95% t-interval over seeds "
                             "(eps=0: clean). PGD: random start, steps of 2.5 eps / steps, projection onto the ball "
                             "and into [0, 1]."))
        base = by.get(STANDARD, [])
        rows = []
        for label, rs in by.items():
            row = [label, len(rs), self.share(rs, "clean").fmt(3), self.share(rs, "pgd_linf").fmt(3),
                   self.share(rs, "pgd_l2").fmt(3)]
            if label == STANDARD or not base:
                row += ["", "", ""]
            else:
                row += [self._paired(rs, base, "clean").fmt(3), self._paired(base, rs, "pgd_linf").fmt(3),
                        self._paired(base, rs, "pgd_l2").fmt(3)]
            rows.append(row)
        c = next(iter(by.values()))[0].config
        out.append(Table("Clean accuracy and its cost (the alignment tax), robust accuracy at the reference radii",
                         ["model", "seeds", "clean", f"PGD L-inf {c['ref_eps_linf']:g}", f"PGD L2 {c['ref_eps_l2']:g}",
                          "clean lost (tax)", "L-inf gained", "L2 gained"], rows,
                         "Mean ± 95% t-interval; the last three columns are paired on seed against the standard "
                         "model (tax: standard minus adversarially trained clean accuracy)."))
        xrows = self._cross_rows(by)
        if xrows:
            out.append(Table(f"Cross-check: our PGD against {evaluate.LIBRARY} PGD on the same models and inputs",
                             ["norm", "eps", "ours (mean)", f"{evaluate.LIBRARY} (mean)", "largest |difference|",
                              "cells", "within tolerance"], xrows,
                             f"One random start each, drawn independently; tolerance {c['tolerance']:g} in accuracy. "
                             f"Library version: {next(iter(by.values()))[0].data.get('library')}."))
        return out

    @staticmethod
    def _cross_rows(by: dict[str, list[RunRecord]]) -> list[list[Any]]:
        rows = []
        for norm in NORMS:
            recs = [r for rs in by.values() for r in rs if "library" in r.data["curves"][norm]]
            if not recs:
                continue
            tol = recs[0].config["tolerance"]
            for i, e in enumerate(recs[0].config[f"eps_{norm}"]):
                ours = [r.data["curves"][norm]["ours_one_start"][i] for r in recs]
                lib = [r.data["curves"][norm]["library"][i] for r in recs]
                worst = max(abs(a - b) for a, b in zip(ours, lib))
                rows.append([NORM_LABEL[norm], f"{e:g}", f"{np.mean(ours):.3f}", f"{np.mean(lib):.3f}", f"{worst:.3f}",
                             len(recs), "yes" if worst <= tol else "NO"])
        return rows

    def figures(self, records: list[RunRecord]) -> list[Figure]:
        by = self._by_model(records)
        if not by:
            return []
        fig, axes = new_figure(ncols=2, width=3.6, height=2.8)
        for ax, norm in zip(axes[0], NORMS):
            eps = np.asarray(next(iter(by.values()))[0].config[f"eps_{norm}"])
            for i, (label, rs) in enumerate(by.items()):
                for attack, style in (("pgd", "-"), ("fgsm", ":")):
                    cis = [mean_ci(r.data["curves"][norm][attack][j] for r in rs) for j in range(len(eps))]
                    mean = np.array([ci.mean for ci in cis])
                    half = np.nan_to_num(np.array([ci.half for ci in cis]))
                    ax.plot(eps, mean, style, color=f"C{i}", marker="o" if attack == "pgd" else None, markersize=3,
                            label=f"{label} {attack.upper()}")
                    if attack == "pgd":
                        ax.fill_between(eps, mean - half, mean + half, color=f"C{i}", alpha=0.2, linewidth=0)
            ax.axvline(next(iter(by.values()))[0].config[f"ref_eps_{norm}"], color="grey", lw=0.6, ls="--")
            ax.set_title(f"{NORM_LABEL[norm]} attacks", fontsize=8)
            ax.set_xlabel("eps (pixel units, inputs in [0, 1])", fontsize=7)
            ax.set_ylabel("test accuracy under attack", fontsize=7)
            ax.set_ylim(0, 1.02)
            ax.tick_params(labelsize=6)
        axes[0, 1].legend(fontsize=5, frameon=False)
        fig.tight_layout()
        return [Figure("Robust accuracy against the perturbation budget", figure_svg(fig),
                       "Solid: PGD (band: 95% t-interval over seeds); dotted: FGSM; dashed line: the reference "
                       "radius of the intended objective. AT: PGD adversarial training at that norm and radius.")]

    def findings(self, records: list[RunRecord]) -> list[str]:
        by = self._by_model(records)
        base = by.get(STANDARD)
        if not base:
            return []
        c = base[0].config
        out = []
        clean = self.share(base, "clean")
        for norm in NORMS:
            ref = c[f"ref_eps_{norm}"]
            robust = self.share(base, f"pgd_{norm}")
            verdict = "far below clean (under half)" if robust.hi < clean.mean / 2 else "not far below clean"
            out.append(f"Standard classifier, PGD {NORM_LABEL[norm]} eps={ref:g}: accuracy {clean.fmt(3)} clean -> "
                       f"{robust.fmt(3)} under attack: {verdict}.")
        for label, rs in by.items():
            if label == STANDARD:
                continue
            tax = self._paired(rs, base, "clean")
            for norm in NORMS:
                gain = self._paired(base, rs, f"pgd_{norm}")
                lost = clean.mean - self.share(base, f"pgd_{norm}").mean
                share = gain.mean / lost if lost > 0 else float("nan")
                out.append(f"{label}: PGD {NORM_LABEL[norm]} eps={c[f'ref_eps_{norm}']:g} accuracy "
                           f"{gain.fmt(3)} against the standard model (paired), recovering {share:.0%} of what the "
                           "attack took from it.")
            out.append(f"{label}: clean accuracy cost (alignment tax) {tax.fmt(3)} (standard minus trained, paired "
                       f"on {tax.n} seeds){'; negative: no cost measured' if tax.mean < 0 else ''}.")
        diffs = [(r.metrics[f"xcheck_{n}"], n) for rs in by.values() for r in rs for n in NORMS
                 if f"xcheck_{n}" in r.metrics]
        if diffs:
            worst = max(d for d, _ in diffs)
            tol = c["tolerance"]
            out.append(f"Our PGD against {evaluate.LIBRARY} PGD (one independent random start each, every radius, "
                       f"{len(diffs)} curves): largest robust-accuracy difference {worst:.3f}, "
                       f"{'within' if worst <= tol else 'OUTSIDE'} the tolerance {tol:g}.")
        else:
            out.append(f"No cross-check: {evaluate.LIBRARY} is not installed (requirements-nodeps.txt).")
        return out
