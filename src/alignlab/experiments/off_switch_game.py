"""The off-switch game experiment (Hadfield-Menell et al. 2017, arXiv:1611.08219).

Sweeps the robot's belief N(mu, sigma^2) over the utility of its action, the human's
Boltzmann noise beta, and the robot's calibration, and measures the incentive to defer
both in closed form and by Monte Carlo play of the game. Specified objective: the payoff
the robot expects for the action it picks (under its own belief). Intended objective: the
payoff the human actually gets from that action (under the true distribution of U). A
calibrated robot's expectation is right; an over- or under-confident one's is not.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.core.experiment import Experiment
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.registry import register
from alignlab.core.section import Figure, Table, figure_svg, new_figure
from alignlab.core.seeding import rng
from alignlab.core.stats import mean_ci
from alignlab.envs import off_switch as game

# Illustrative values of Delta (Hadfield-Menell et al. 2017, "The Off-Switch Game", arXiv:1611.08219,
# Eq. 1) for a Gaussian belief and a Boltzmann human of temperature beta.
REFERENCE_POINTS = [  # (mu, sigma, beta, Delta)
    (0.0, 1.0, 0.0, 0.400), (0.0, 1.0, 0.25, 0.365), (0.0, 1.0, 1.0, 0.207), (0.0, 1.0, 4.0, 0.062),
    (0.5, 0.5, 0.0, 0.041), (0.5, 0.5, 0.25, 0.000), (0.5, 0.5, 1.0, -0.136), (0.5, 0.5, 4.0, -0.219),
    (0.5, 1.0, 0.0, 0.198), (0.5, 1.0, 0.25, 0.166), (0.5, 1.0, 1.0, 0.000), (0.5, 1.0, 4.0, -0.173),
    (0.5, 2.0, 0.0, 0.574), (0.5, 2.0, 0.25, 0.554), (0.5, 2.0, 1.0, 0.382), (0.5, 2.0, 4.0, 0.000),
    (1.0, 0.1, 0.0, 0.000), (1.0, 0.1, 0.25, -0.019), (1.0, 0.1, 1.0, -0.267), (1.0, 0.1, 4.0, -0.437),
]


@dataclasses.dataclass(frozen=True)
class OffSwitchConfig(BaseConfig):
    mus: tuple[float, ...] = (-0.5, 0.0, 0.5, 1.0)
    """Means of the robot's Gaussian belief over U, the utility of its action."""
    sigmas: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)
    """Standard deviations of the belief: the robot's uncertainty about U."""
    betas: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    """Boltzmann temperatures of the human: 0 is perfectly rational, larger is noisier."""
    belief_scales: tuple[float, ...] = (0.5, 1.0, 2.0)
    """Robot's belief std divided by the true std of U: 1 calibrated, <1 overconfident, >1 underconfident."""
    mc_samples: int = 200_000
    """Monte Carlo plays of the game per cell."""

    @classmethod
    def quick(cls) -> "OffSwitchConfig":
        return cls(
            mus=(0.0, 0.5), sigmas=(0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
            betas=(0.0, 0.25, 1.0, 4.0), belief_scales=(1.0, 2.0), mc_samples=100_000,
        )

    def __post_init__(self) -> None:
        if not self.mus or not self.sigmas or not self.betas or not self.belief_scales:
            raise ConfigError("off-switch-game: mus, sigmas, betas and belief_scales must be non-empty")
        if any(s <= 0 for s in self.sigmas):
            raise ConfigError(f"off-switch-game: sigmas must be > 0 (got {self.sigmas})")
        if any(b < 0 for b in self.betas):
            raise ConfigError(f"off-switch-game: betas must be >= 0 (got {self.betas})")
        if any(c <= 0 for c in self.belief_scales):
            raise ConfigError(f"off-switch-game: belief_scales must be > 0 (got {self.belief_scales})")
        if self.mc_samples < 100:
            raise ConfigError(f"off-switch-game: mc_samples must be >= 100 (got {self.mc_samples})")


@register("experiment", "off-switch-game-v0")
class OffSwitchGame(Experiment):
    title = "The off-switch game"
    summary = (
        "Does a robot that is uncertain about the human's utility leave its off switch on? "
        "The incentive to defer to the human is measured in closed form and by Monte Carlo play, "
        "against the robot's uncertainty, the human's rationality and the robot's calibration."
    )
    source = "Hadfield-Menell, Dragan, Abbeel, Russell 2017, \"The Off-Switch Game\", IJCAI, arXiv:1611.08219"
    specified_label = "payoff the robot expects for its chosen action (its belief)"
    intended_label = "payoff the human actually gets from that action (true U)"
    tour = True
    Config = OffSwitchConfig
    default_seeds = 3
    quick_seeds = 2

    def cells(self) -> list[dict[str, Any]]:
        c = self.config
        return [
            {"mu": mu, "sigma": s, "beta": b, "belief_scale": k, "mc_samples": c.mc_samples}
            for mu in c.mus for s in c.sigmas for b in c.betas for k in c.belief_scales
        ]

    def table_columns(self) -> list[str]:
        return ["mu", "sigma", "beta", "belief_scale"]

    def headline(self, records: list[RunRecord]) -> tuple[str, Any] | None:
        if not records:
            return None
        return "share of configurations where the robot defers to the human", self.share(records, "defers")

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        mu, sigma, beta = params["mu"], params["sigma"], params["beta"]
        scale, n = params["belief_scale"], params["mc_samples"]
        true = game.gaussian_terms(mu, sigma, beta)
        belief = game.gaussian_terms(mu, scale * sigma, beta)
        choice = game.robot_choice(belief.values())
        best = max(true.values().values())

        # Monte Carlo: the paper's Delta under the true U (an independent stream per cell, so
        # the coverage check over cells is a real test), and the game played by a robot that
        # picked `choice` from its belief (common streams across cells, paired comparisons).
        delta_mc, delta_se = game.monte_carlo_delta(mu, sigma, beta, n, rng(seed, "delta", f"{mu},{sigma},{beta}"))
        world, imagined = rng(seed, "world"), rng(seed, "belief")
        u_true = mu + sigma * world.standard_normal(n)
        u_belief = mu + scale * sigma * imagined.standard_normal(n)
        intended = game.play(choice, u_true, beta, world.random(n)).mean()
        specified = game.play(choice, u_belief, beta, imagined.random(n)).mean()
        return CellResult(metrics={
            "specified": specified,
            "intended": intended,
            "gap": specified - intended,
            "specified_exact": belief.values()[choice],
            "intended_exact": true.values()[choice],
            "regret_exact": best - true.values()[choice],
            "defers": float(choice == "defer"),
            "switches_off": float(choice == "off"),
            "delta": true.delta,
            "delta_eq7": true.delta_eq7,
            "delta_mc": delta_mc,
            "delta_mc_se": delta_se,
            "delta_z": (delta_mc - true.delta) / delta_se if delta_se > 0 else 0.0,
            "p_correction": true.p_correction,
            "beta_threshold": game.beta_threshold(mu, sigma),
        })

    # -- report ----------------------------------------------------------------------------

    def _calibrated(self, records: list[RunRecord]) -> list[RunRecord]:
        return [r for r in records if r.status == "ok" and r.config["belief_scale"] == 1.0]

    def findings(self, records: list[RunRecord]) -> list[str]:
        recs = self._calibrated(records)
        if not recs:
            return ["No calibrated (belief_scale = 1) cells in the store: the paper's claims were not checked."]
        out = []
        rational = [r for r in recs if r.config["beta"] == 0]
        if rational:
            lo = min(r.metrics["delta"] for r in rational)
            pos = sum(r.metrics["delta"] > 0 for r in rational)
            out.append(
                f"Theorem 1 (rational human): minimum Delta over {len(rational)} cells = {lo:+.3g} "
                f"({'>= 0: reproduced' if lo >= -1e-12 else 'NEGATIVE: not reproduced'}); Delta > 0 in "
                f"{pos}/{len(rational)} cells (a Gaussian belief puts mass on both signs of U)."
            )
            curves = defaultdict(dict)
            for r in rational:
                curves[r.config["mu"]][r.config["sigma"]] = r.metrics["delta"]
            mono = [all(np.diff([c[s] for s in sorted(c)]) > 0) for c in curves.values()]
            out.append(
                f"Delta grows with the robot's uncertainty sigma (rational human): strictly increasing "
                f"in {sum(mono)}/{len(mono)} belief means."
            )
        noisy = [r for r in recs if r.config["mu"] != 0]
        if noisy:
            agree = sum(
                (r.metrics["delta"] > 0) == (r.config["beta"] < r.metrics["beta_threshold"])
                for r in noisy
                if abs(r.config["beta"] - r.metrics["beta_threshold"]) > 1e-6
            )
            n = sum(abs(r.config["beta"] - r.metrics["beta_threshold"]) > 1e-6 for r in noisy)
            out.append(
                f"Noisy human: for mu != 0 there is a threshold beta* beyond which the robot prefers to "
                f"act; Delta > 0 exactly when beta < beta* in {agree}/{n} cells."
            )
            pairs = {(r.config["mu"], r.config["sigma"]): r.metrics["beta_threshold"] for r in noisy}
            dev = max(abs(b / (s**2 / (2 * abs(m))) - 1) for (m, s), b in pairs.items() if b > 0)
            out.append(
                f"Measured here (not stated in the paper): with a logistic human the threshold is "
                f"beta* = sigma^2 / (2|mu|) to a relative error of {dev:.1e} over {len(pairs)} beliefs."
            )
        zs = np.array([r.metrics["delta_z"] for r in recs])
        eq7 = max(abs(r.metrics["delta"] - r.metrics["delta_eq7"]) for r in recs)
        out.append(
            f"Monte Carlo vs closed form: the closed form lies inside the Monte Carlo 95% interval in "
            f"{np.mean(np.abs(zs) < 1.96):.1%} of {len(zs)} cell-seeds (expected about 95%), and inside "
            f"the 99.9% interval in {np.mean(np.abs(zs) < 3.29):.1%}; Eq. 1 and Eq. 7 differ by at most {eq7:.1e}."
        )
        ok = [r for r in records if r.status == "ok"]
        off_rational = sum(r.metrics["switches_off"] for r in ok if r.config["beta"] == 0)
        off_noisy = sum(r.metrics["switches_off"] for r in ok if r.config["beta"] > 0)
        out.append(
            f"The robot switched itself off in {int(off_rational)} cells with a rational human (the paper: "
            f"no incentive to switch off) and in {int(off_noisy)} cells with a noisy human (possible when "
            f"mu < 0 and the human lets bad actions through)."
        )
        return out

    def tables(self, records: list[RunRecord]) -> list[Table]:
        rows = []
        for mu, sigma, beta, ref in REFERENCE_POINTS:
            ours = game.incentive(mu, sigma, beta)
            rows.append([mu, sigma, beta, f"{ref:+.3f}", f"{ours:+.4f}", "yes" if abs(ours - ref) <= 2e-3 else "no"])
        tables = [Table(
            "Closed form at the reference points",
            ["mu", "sigma", "beta", "reference Delta", "alignlab Delta", "within 0.002"], rows,
            "Reference: illustrative values of the incentive Delta of Hadfield-Menell et al. 2017 "
            "(\"The Off-Switch Game\", arXiv:1611.08219, Eq. 1) for a Gaussian belief, given to about "
            "3 decimals (the 0.400 is sigma/sqrt(2 pi) = 0.3989).",
        )]
        by_scale: dict[float, list[RunRecord]] = defaultdict(list)
        for r in records:
            if r.status == "ok":
                by_scale[r.config["belief_scale"]].append(r)
        rows = []
        for scale in sorted(by_scale):
            rs = by_scale[scale]
            rows.append([
                scale, len(rs),
                mean_ci([r.metrics["specified"] for r in rs]).fmt(),
                mean_ci([r.metrics["intended"] for r in rs]).fmt(),
                mean_ci([r.metrics["gap"] for r in rs]).fmt(),
                mean_ci([r.metrics["regret_exact"] for r in rs]).fmt(),
                f"{np.mean([r.metrics['defers'] for r in rs]):.0%}",
            ])
        tables.append(Table(
            "Calibration of the robot's belief",
            ["belief scale", "cell-seeds", "specified", "intended", "gap", "regret (exact)", "defers"], rows,
            "Mean over all cells with 95% intervals. Belief scale = robot's std / true std. Regret = best "
            "achievable intended payoff minus the payoff of the robot's choice.",
        ))
        return tables

    def figures(self, records: list[RunRecord]) -> list[Figure]:
        recs = self._calibrated(records)
        if not recs:
            return []
        mus = sorted({r.config["mu"] for r in recs})
        betas = sorted({r.config["beta"] for r in recs})
        fig, axes = new_figure(ncols=len(mus), width=3.6, height=3.0, sharey=False)
        for ax, mu in zip(axes[0], mus):
            for i, beta in enumerate(betas):
                rs = [r for r in recs if r.config["mu"] == mu and r.config["beta"] == beta]
                sig = sorted({r.config["sigma"] for r in rs})
                grid = np.geomspace(min(sig), max(sig), 60)
                color = f"C{i}"
                ax.plot(grid, [game.incentive(mu, s, beta) for s in grid], color=color, lw=1.2,
                        label=f"β={beta:g}" + (" (rational)" if beta == 0 else ""))
                stats_ = [mean_ci([r.metrics["delta_mc"] for r in rs if r.config["sigma"] == s]) for s in sig]
                ax.errorbar(sig, [c.mean for c in stats_], yerr=[c.half for c in stats_], fmt="o",
                            ms=3, color=color, capsize=2)
            ax.axhline(0, color="k", lw=0.6)
            ax.set_xscale("log")
            ax.set_xlabel("robot's uncertainty σ")
            ax.set_title(f"belief mean μ = {mu:g}")
        axes[0][0].set_ylabel("incentive to defer Δ")
        axes[0][-1].legend(fontsize=7)
        figs = [Figure(
            "Incentive to defer against the robot's uncertainty",
            figure_svg(fig),
            "Lines: closed form (rational) or quadrature of Eq. 1 (noisy human). Points: Monte Carlo play "
            "of the game, mean and 95% interval across seeds. Above zero the robot leaves the switch on.",
        )]
        nonzero = [m for m in mus if m != 0]
        if nonzero:
            fig, axes = new_figure(width=4.4, height=3.2)
            ax = axes[0][0]
            sig = sorted({r.config["sigma"] for r in recs})
            grid = np.geomspace(min(sig), max(sig), 40)
            for i, mu in enumerate(nonzero):
                ax.plot(grid, [game.beta_threshold(mu, s) for s in grid], color=f"C{i}", label=f"μ = {mu:g}")
                for r in recs:
                    if r.config["mu"] == mu and r.metrics["delta"] != 0:
                        ax.plot(r.config["sigma"], max(r.config["beta"], 1e-2), "o" if r.metrics["delta"] > 0 else "x",
                                color=f"C{i}", ms=4, alpha=0.7)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("robot's uncertainty σ")
            ax.set_ylabel("human noise β")
            ax.legend(fontsize=7)
            figs.append(Figure(
                "Threshold of human noise beyond which the robot acts",
                figure_svg(fig),
                "Line: β* where Δ = 0. Markers: measured cells, o = robot defers (Δ > 0), x = robot acts "
                "(Δ < 0); β = 0 is drawn at 0.01.",
            ))
        return figs
