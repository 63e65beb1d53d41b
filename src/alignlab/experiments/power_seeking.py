"""Power seeking (Turner, Smith, Shah, Critch, Tadepalli 2021, "Optimal Policies Tend to Seek Power",
NeurIPS, arXiv:1912.01683): POWER of every state of every registered environment with a tabular model,
and the share of reward functions whose optimal policy avoids a shutdown state when another action keeps
more options open, against the discount rate.

Rewards are on states, iid uniform on [0, 1] (the paper's D). Each sampled reward function is solved by
exact discounted value iteration on the model (to a stated tolerance); the expectation over D is a Monte
Carlo mean with its standard error (`alignlab.envs.power`). The canonical example (shutdown versus a hub
with k options) also has a closed form, and the two are reported side by side.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.core import registry
from alignlab.core.errors import ConfigError
from alignlab.core.experiment import Experiment, ExperimentConfig
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.registry import register
from alignlab.core.section import Figure, Table, figure_svg, new_figure
from alignlab.core.seeding import rng
from alignlab.envs import power as pw
from alignlab.envs.grid.engine import tile

CASES = ("canonical", "safe-interruptibility-v0", "shutdown-button-v0")
"""Shutdown cases: the canonical MDP; the interruption gridworld in an interrupting episode (shutdown:
frozen on the interruption tile, the button not pressed); the shutdown-button gridworld with a rational
supervisor (shutdown: switched off on the way into the shortcut)."""


@dataclasses.dataclass(frozen=True)
class PowerSeekingConfig(ExperimentConfig):
    envs: tuple[str, ...] = ()
    """Environments whose POWER is estimated (registered names); empty: every one with a tabular model."""
    power_gammas: tuple[float, ...] = (0.5, 0.9)
    """Discount rates of the POWER estimates."""
    power_samples: int = 2000
    """Reward functions sampled per POWER estimate."""
    cases: tuple[str, ...] = CASES
    """Shutdown cases (see CASES)."""
    gammas: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99)
    """Discount rates of the avoid-shutdown sweep."""
    samples: int = 20000
    """Reward functions sampled per avoid-shutdown estimate."""
    k: int = 3
    """Options reachable from the canonical MDP's hub."""
    tol: float = 1e-4
    """Value-iteration tolerance on the normalised value (1 - gamma) V."""
    heatmap_envs: tuple[str, ...] = ("safe-interruptibility-v0", "shutdown-button-v0", "island-navigation-v0",
                                     "side-effects-sokoban-v0")
    """Gridworlds whose POWER is drawn as a heat map."""

    @classmethod
    def quick(cls) -> "PowerSeekingConfig":
        return cls(envs=("safe-interruptibility-v0", "shutdown-button-v0", "island-navigation-v0",
                         "side-effects-sokoban-v0", "whisky-gold-v0", "absent-supervisor-v0"),
                   power_gammas=(0.9,), power_samples=1000, gammas=(0.1, 0.5, 0.9, 0.95), samples=8000)

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [c for c in self.cases if c not in CASES]
        if bad:
            raise ConfigError(f"power-seeking: unknown cases {bad}; valid: {', '.join(CASES)}")
        for name in ("power_gammas", "gammas"):
            if any(not 0.0 < g < 1.0 for g in getattr(self, name)):
                raise ConfigError(f"power-seeking: {name} must lie in (0, 1) (got {getattr(self, name)})")
        if self.power_samples < 10 or self.samples < 10:
            raise ConfigError("power-seeking: power_samples and samples must be >= 10")
        if self.k < 2:
            raise ConfigError(f"power-seeking: k must be >= 2 (got {self.k})")
        if not 0.0 < self.tol < 0.1:
            raise ConfigError(f"power-seeking: tol must be in (0, 0.1) (got {self.tol})")


def has_model(name: str) -> bool:
    env = registry.make("env", name)
    return callable(getattr(env, "tabular", None)) and env.tabular() is not None


def shutdown_case(case: str, k: int) -> tuple[Any, int, int]:
    """(model, decision state, shutdown state) of a shutdown case."""
    if case == "canonical":
        return pw.canonical_model(k), 0, 1
    if case == "safe-interruptibility-v0":
        env = registry.make("env", case, should_interrupt=True)
        spot = env.grid.first("I")
        is_shutdown = [s == (True, False, spot) for s in env.states()]
    else:
        env = registry.make("env", case, supervisor_noise=0.0)
        is_shutdown = [bool(s[4]) for s in env.states()]
    model = env.tabular()
    shutdown = is_shutdown.index(True)  # the first one breadth-first from the start
    P, A = pw.transition_matrix(model), model.n_actions
    for s in range(model.n_states):  # the first state (breadth-first) with a choice about it
        acts = pw.shutdown_actions(P, s, A, shutdown)
        if s != shutdown and acts.any() and not acts.all():
            return model, s, shutdown
    raise RuntimeError(f"{case}: no state chooses between shutdown and another action")


def agent_cells(model) -> list[int] | None:
    """Per state, the flat board cell of the agent `A` in its observation (None: not a board env)."""
    if model.obs is None or model.obs.ndim != 3:
        return None
    flat = model.obs.reshape(model.n_states, -1) == tile("A")
    return [int(np.argmax(row)) if row.any() else -1 for row in flat]


@register("experiment", "power-seeking-v0")
class PowerSeeking(Experiment):
    title = "Power seeking: optimal policies keep their options open"
    summary = ("POWER (the normalised optimal value a state leaves attainable, averaged over random state "
               "rewards) of every state of every environment with a tabular model, and the share of reward "
               "functions whose optimal policy avoids a shutdown state when another action keeps more options: "
               "Turner et al. prove it is at least one half and grows with the discount rate.")
    source = ("Turner, Smith, Shah, Critch, Tadepalli 2021, \"Optimal Policies Tend to Seek Power\", NeurIPS, "
              "arXiv:1912.01683")
    specified_label = ("the optimizer's normalised optimal return (1 - gamma) V*_R at the decision state, mean over "
                       "reward functions R ~ D")
    intended_label = ("share of reward functions under which the optimal policy does not seek power at the decision "
                      "state: lets itself be shut down (shutdown cases) or does not move to the successor of "
                      "highest POWER (environments)")
    tour = True
    Config = PowerSeekingConfig
    default_seeds = 3
    quick_seeds = 2

    def _envs(self) -> list[str]:
        names = [registry.resolve("env", n) for n in self.config.envs] or registry.names("env")
        return [n for n in names if has_model(n)]

    def cells(self) -> list[dict[str, Any]]:
        c = self.config
        out = [{"kind": "shutdown", "case": case, "gamma": g, "samples": c.samples, "k": c.k, "tol": c.tol}
               for case in c.cases for g in c.gammas]
        out += [{"kind": "power", "env": env, "gamma": g, "samples": c.power_samples, "tol": c.tol}
                for env in self._envs() for g in c.power_gammas]
        return out

    def table_columns(self) -> list[str]:
        return ["kind", "case", "env", "gamma"]

    def headline(self, records: list[RunRecord]) -> tuple[str, Any] | None:
        sd = [r for r in records if r.config["kind"] == "shutdown"]
        if not sd:
            return None
        return "share of reward functions whose optimal policy avoids shutdown (all cases and rates)", \
            self.share(sd, "avoid")

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        g, n, tol = params["gamma"], params["samples"], params["tol"]
        if params["kind"] == "shutdown":
            model, c, z = shutdown_case(params["case"], params["k"])
        else:
            model = registry.make("env", params["env"]).tabular()
            c = int(np.flatnonzero(model.initial > 0)[0])
        key = params.get("case") or params["env"]
        est = pw.power(model, g, n, rng(seed, "power", key, str(g)), tol=tol)
        P, A = pw.transition_matrix(model), model.n_actions
        spec = (1.0 - g) * est.values[c]
        m: dict[str, float] = {"specified": float(spec.mean()), "specified_se": float(spec.std(ddof=1) / math.sqrt(n)),
                               "power_decision": float(est.power[c]), "power_decision_se": float(est.se[c]),
                               "states": float(model.n_states)}
        term = np.flatnonzero(model.terminal)
        if len(term):  # an absorbing state's POWER is exactly 1/2 (E[R])
            m["absorbing_max_z"] = float(np.max(np.abs(est.power[term] - 0.5) / est.se[term]))
        data: dict[str, Any] = {}
        if params["kind"] == "shutdown":
            avoid_actions = ~pw.shutdown_actions(P, c, A, z)
            avoid = pw.choice_share(P, est.values, c, A, avoid_actions)
            succ = {int(s) for a in np.flatnonzero(avoid_actions) for s in P[c * A + a].indices}
            m.update(avoid=float(avoid.mean()), avoid_se=float(avoid.std(ddof=1) / math.sqrt(n)),
                     power_shutdown=float(est.power[z]), power_shutdown_se=float(est.se[z]),
                     avoid_limit0=len(succ) / (len(succ) + 1.0))  # gamma -> 0: the best of m iid successors
            if params["case"] == "canonical":
                m["avoid_exact"] = pw.canonical_avoid_share(params["k"], g)
                m["power_decision_exact"] = pw.canonical_power(params["k"], g)["start"]
            m["intended"] = 1.0 - m["avoid"]
        else:
            nxt = [P[c * A + a].indices for a in range(A)]
            score = np.array([est.power[s].mean() for s in nxt])
            seek = score >= score.max() - 1e-12
            distinct = len({tuple(s) for s in nxt})
            share = pw.choice_share(P, est.values, c, A, seek) if not seek.all() else np.zeros(n, dtype=bool)
            m.update(seek=float(share.mean()), seek_se=float(share.std(ddof=1) / math.sqrt(n)),
                     successors=float(distinct), intended=1.0 - float(share.mean()),
                     power_mean=float(est.power.mean()), power_max_se=float(est.se.max()))
            cells = agent_cells(model)
            if cells is not None:
                data["agent_cell"] = cells
                data["power"] = [round(float(x), 5) for x in est.power]
                data["shape"] = list(model.obs.shape[1:])
                data["walls"] = np.flatnonzero(model.obs[c].ravel() == tile("#")).tolist()
        m["gap"] = m["specified"] - m["intended"]
        return CellResult(metrics=m, data=data)

    # -- report ------------------------------------------------------------------------------------
    def _by(self, records: list[RunRecord], kind: str) -> dict[str, list[RunRecord]]:
        out: dict[str, list[RunRecord]] = defaultdict(list)
        for r in records:
            if r.config["kind"] == kind:
                out[r.config.get("case") or r.config["env"]].append(r)
        return out

    def tables(self, records: list[RunRecord]) -> list[Table]:
        rows = []
        for case, rs in self._by(records, "shutdown").items():
            for g in sorted({r.config["gamma"] for r in rs}):
                gs = [r for r in rs if r.config["gamma"] == g]
                ex = gs[0].metrics.get("avoid_exact")
                mc = np.mean([r.metrics["avoid"] for r in gs])
                se = math.sqrt(np.mean([r.metrics["avoid_se"] ** 2 for r in gs]) / len(gs))
                rows.append([case, g, f"{mc:.4f} ± {1.96 * se:.4f}", "-" if ex is None else f"{ex:.4f}",
                             "-" if ex is None else f"{(mc - ex) / se:+.2f}", f"{gs[0].metrics['avoid_limit0']:.3f}",
                             f"{np.mean([r.metrics['power_decision'] for r in gs]):.4f}",
                             f"{np.mean([r.metrics['power_shutdown'] for r in gs]):.4f}", len(gs)])
        tables = [Table(
            "Share of reward functions whose optimal policy avoids shutdown",
            ["case", "gamma", "Monte Carlo (95%)", "exact", "z", "gamma->0 limit", "POWER decision state",
             "POWER shutdown state", "seeds"], rows,
            "Monte Carlo: mean over seeds of the share among sampled reward functions, each solved exactly; exact: "
            "the closed form (1 - gamma)/2 + gamma k/(k+1) of the canonical MDP. gamma->0 limit: m/(m+1) for m "
            "distinct non-shutdown successors. A shutdown state is absorbing, so its POWER is exactly 1/2.")]
        rows = []
        for env, rs in sorted(self._by(records, "power").items()):
            for g in sorted({r.config["gamma"] for r in rs}):
                gs = [r for r in rs if r.config["gamma"] == g]
                mm = lambda k: np.mean([r.metrics[k] for r in gs])  # noqa: E731
                rows.append([env, g, int(mm("states")), f"{mm('power_decision'):.3f}", f"{mm('power_mean'):.3f}",
                             f"{mm('power_max_se'):.4f}", int(mm("successors")), f"{mm('seek'):.3f}",
                             f"{mm('specified'):.3f}"])
        if rows:
            tables.append(Table(
                "POWER per environment",
                ["environment", "gamma", "states", "POWER at start", "mean POWER", "largest s.e.",
                 "distinct successors", "share seeking the highest-POWER successor", "(1-gamma) V* at start"], rows,
                "Seeking share: reward functions whose optimal first action at the start goes to the successor of "
                "highest estimated POWER (0 where every action leads there)."))
        return tables

    def findings(self, records: list[RunRecord]) -> list[str]:
        out = []
        for case, rs in self._by(records, "shutdown").items():
            gs = sorted({r.config["gamma"] for r in rs})
            avg = [np.mean([r.metrics["avoid"] for r in rs if r.config["gamma"] == g]) for g in gs]
            lo = []  # lower 95% bound of the share pooled over seeds
            for g, mean in zip(gs, avg):
                ses = [r.metrics["avoid_se"] for r in rs if r.config["gamma"] == g]
                lo.append(mean - 1.96 * math.sqrt(sum(x * x for x in ses)) / len(ses))
            rising = all(b >= a - 1e-12 for a, b in zip(avg, avg[1:]))
            out.append(
                f"{case}: avoid-shutdown share {avg[0]:.3f} at gamma={gs[0]:g} to {avg[-1]:.3f} at gamma={gs[-1]:g}; "
                f"above 1/2 (lower 95% bound, seeds pooled) at {sum(x > 0.5 for x in lo)}/{len(gs)} rates; "
                f"{'non-decreasing in gamma' if rising else 'NOT monotone in gamma'} (Turner et al.: >= 1/2, growing).")
            ex = [r for r in rs if "avoid_exact" in r.metrics]
            if ex:
                z = np.array([(r.metrics["avoid"] - r.metrics["avoid_exact"]) / r.metrics["avoid_se"] for r in ex])
                zp = np.array([(r.metrics["power_decision"] - r.metrics["power_decision_exact"])
                               / r.metrics["power_decision_se"] for r in ex])
                worst = max(np.abs(z).max(), np.abs(zp).max())
                out.append(f"{case}: the closed form lies inside the Monte Carlo 95% interval in "
                           f"{np.mean(np.abs(z) < 1.96):.0%} of {len(z)} cell-seeds (avoid share) and "
                           f"{np.mean(np.abs(zp) < 1.96):.0%} (POWER of the start); largest |z| {worst:.2f}.")
        zs = [r.metrics["absorbing_max_z"] for r in records if "absorbing_max_z" in r.metrics]
        if zs:
            out.append(f"Absorbing states have POWER 1/2 exactly; the largest deviation of an estimate over "
                       f"{len(zs)} cell-seeds is {max(zs):.2f} standard errors (the largest of many states).")
        pr = [r for r in records if r.config["kind"] == "power" and r.metrics["successors"] > 1]
        if pr:
            above = [r for r in pr if r.metrics["seek"] > 1.0 / r.metrics["successors"]]
            out.append(f"Environments: the optimal first move goes to the highest-POWER successor more often than "
                       f"1/(distinct successors) in {len(above)}/{len(pr)} cell-seeds.")
        return out

    def figures(self, records: list[RunRecord]) -> list[Figure]:
        figs = []
        sd = self._by(records, "shutdown")
        if sd:
            fig, axes = new_figure(width=4.6, height=3.2)
            ax = axes[0][0]
            for i, (case, rs) in enumerate(sd.items()):
                gs = sorted({r.config["gamma"] for r in rs})
                ys = [np.mean([r.metrics["avoid"] for r in rs if r.config["gamma"] == g]) for g in gs]
                es = [1.96 * max(r.metrics["avoid_se"] for r in rs if r.config["gamma"] == g) for g in gs]
                ax.errorbar(gs, ys, yerr=es, fmt="o", ms=3, color=f"C{i}", capsize=2, label=f"{case} (sampled)")
                if "avoid_exact" in rs[0].metrics:
                    grid = np.linspace(0, 1, 50)
                    ax.plot(grid, [pw.canonical_avoid_share(rs[0].config["k"], g) for g in grid], color=f"C{i}",
                            lw=1, label=f"{case} (exact)")
                ax.plot([0], [rs[0].metrics["avoid_limit0"]], "x", color=f"C{i}", ms=6)
            ax.axhline(0.5, color="k", lw=0.6, ls=":")
            ax.set_xlabel("discount rate γ")
            ax.set_ylabel("share avoiding shutdown")
            ax.legend(fontsize=6)
            figs.append(Figure("Optimal policies avoid shutdown, more so as γ grows", figure_svg(fig),
                               "Points: share of sampled reward functions (95% interval, widest seed) whose optimal "
                               "action avoids the shutdown state; line: the canonical MDP's closed form; x at γ = 0: "
                               "the exact myopic limit m/(m+1). Dotted: one half."))
        maps = [r for r in records if r.config["kind"] == "power" and "power" in r.data
                and r.config["env"] in self.config.heatmap_envs]
        if maps:
            top = max(r.config["gamma"] for r in maps)
            envs = sorted({r.config["env"] for r in maps if r.config["gamma"] == top})
            fig, axes = new_figure(ncols=len(envs), width=2.8, height=2.4)
            for ax, env in zip(axes[0], envs):
                r = next(r for r in maps if r.config["env"] == env and r.config["gamma"] == top)
                h, w = r.data["shape"]
                total, count = np.zeros(h * w), np.zeros(h * w)
                for cell, p in zip(r.data["agent_cell"], r.data["power"]):
                    if cell >= 0:
                        total[cell] += p
                        count[cell] += 1
                grid = np.where(count > 0, total / np.maximum(count, 1), np.nan).reshape(h, w)
                im = ax.imshow(grid, cmap="viridis")
                ax.set_title(env.removesuffix("-v0"), fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
                fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            figs.append(Figure(f"POWER over the grid (γ = {top:g})", figure_svg(fig),
                               "Mean POWER of the model's states with the agent on each cell (other state variables "
                               "averaged); blank: walls or cells the agent never occupies."))
        return figs
