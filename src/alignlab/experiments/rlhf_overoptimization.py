"""Reward-model overoptimization on a real language model (Gao, Schulman, Hilton 2022, arXiv:2210.10760).

Synthetic RLHF on SmolLM2-135M-Instruct: simulated raters (a mix of the gold reward and
known human-rater biases, with Bradley-Terry noise) compare pairs of the policy's answers to
factual questions; a Bradley-Terry reward model (a linear head on the policy's frozen hidden
states) learns from those comparisons; best-of-n against that proxy puts optimization
pressure on it, for every n from one pool of samples by order statistics, and the gold
reward (correct regardless of the user's stated belief, and concise) is tracked against
d = sqrt(KL), KL = log n - (n-1)/n, fitted to Gao et al.'s form R(d) = d (alpha - beta d).
RL against the same proxy (TRL's GRPO / RLOO, one cell per KL penalty) is in `rlhf_rl.py`,
fitted to R(d) = d (alpha - beta log d). Remedies join as techniques on two slots (`techniques`,
paired with the baseline cell on each seed): `reward-model` (the settings `rlhf_pool.reward_model_settings`
hands to `fit_ensemble`, e.g. reward-model-ensemble, Coste et al. 2023, arXiv:2310.02743) and `optimizer`
(`rlhf_pool.optimizer_settings`, e.g. kl-penalty: for best-of-n the KL-regularised optimum pi_0 exp(r/beta)
on the same pool, Korbak et al. 2022, arXiv:2205.11275; for RL / DPO the trainer's beta). The older sweeps
stay as grid dimensions: less biased raters, more comparison data, `ensembles` (SIZE:AGGREGATE), `rl_betas`,
and every best-of-n cell's tilt curve over TILT_BETAS (the KL-penalty figure).
The behavioural drift that explains the gap (length, confidence, agreement) is recorded too.

Normalisation: `specified` and `intended` are the proxy and gold gains at the most pressure (largest n, or
the last RL step; the KL-regularised optimum in a kl-penalty cell) over the initial policy, each in units of its
within-prompt standard deviation over the initial policy's samples, so the two are on one scale; `gap` =
specified - intended. `kl_final` and `*_final` describe the same final policy in every cell; the curve metrics
(`gold_peak*`, fits, `max_kl`) describe the cell's best-of-n curve.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

import numpy as np

from alignlab.core.errors import ConfigError, RegistryError
from alignlab.core.experiment import TECHNIQUE_KEY, Experiment, ExperimentConfig
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.registry import register
from alignlab.core.section import Figure, Table, figure_svg, new_figure
from alignlab.core.seeding import rng
from alignlab.core.stats import mean_ci
from alignlab.experiments import rlhf_rl
from alignlab.experiments.gao_fits import fit_gao
from alignlab.experiments.rlhf_pool import POOL_KEYS, optimizer_settings, prepare
from alignlab.experiments.rlhf_rl import RL_OPTIMIZERS
from alignlab.lm import best_of_n as bon
from alignlab.lm.models import resolve_dtype
from alignlab.rewards import reward_models as rm

TILT_BETAS = (4.0, 2.0, 1.0, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08, 0.05)
DRIFT = ("words", "confidence", "hedges", "agrees", "correct")


@dataclasses.dataclass(frozen=True)
class RlhfOverConfig(ExperimentConfig):
    model: str = "embedded"
    """The policy: 'embedded' (SmolLM2-135M-Instruct) or a local model folder."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Dtype for sampling, features and training; auto: bfloat16 where the CPU (or GPU) runs it natively, else
    float32 (emulated bf16 is far slower; see docs/benchmarks.md). The cells record the resolved one."""
    kinds: tuple[str, ...] = ("capital", "arithmetic")
    """Task families (capital, arithmetic)."""
    train_prompts: int = 96
    """Prompts (train split) whose samples the raters compare."""
    train_samples: int = 8
    """Samples per training prompt."""
    test_prompts: int = 32
    """Prompts (test split) for best-of-n."""
    pool_size: int = 256
    """Samples per test prompt: best-of-n is estimated for every n up to this."""
    max_new_tokens: int = 32
    """Longest response sampled."""
    temperature: float = 0.8
    """Sampling temperature of the initial policy."""
    layer: int = 20
    """Hidden layer whose states feed the reward-model head."""
    rater_bias: tuple[float, ...] = (0.5, 0.0, 1.0)
    """Multiplier of the 'biased' rater preset's bias weights (length, confidence, agreement); 0 = unbiased. The
    first is the baseline: at 1.0 on both task kinds the raters agree with gold on only ~34% of pairs and gold
    falls from n = 1 (docs/rlhf-bon-medium.md), so the full preset's baseline is half-biased raters."""
    rater_temperature: float = 0.25
    """Bradley-Terry noise of the raters."""
    n_pairs: tuple[int, ...] = (2000, 500, 8000)
    """Comparisons the reward model is trained on."""
    ensembles: tuple[str, ...] = ("1:mean", "5:mean-std", "5:min")
    """Reward models as SIZE:AGGREGATE (aggregate: mean, mean-std, min), one cell each; the technique
    reward-model-ensemble(size=..., aggregate=...) fits the same ensemble in the first one's cells, paired."""
    l2: float = 100.0
    """L2 penalty of the reward-model head (on standardised features)."""
    length_cost: float = 0.03
    """Gold reward lost per word beyond a concise answer (10 words)."""
    factorial: bool = False
    """Full grid over rater_bias x n_pairs x ensembles; else the baseline (first of each) plus one change at a time."""
    pool_seed: int = 0
    """Seed of the prompt choice and of the sampled pool (shared by every cell and seed)."""
    optimizers: tuple[str, ...] = ("best-of-n", "grpo", "dpo")
    """Optimizers: best-of-n (from the pool), grpo / rloo (RL with TRL against the proxy reward model; step
    times in docs/benchmarks.md), dpo / dpo-lora (TRL on the raters' comparisons, every weight / LoRA adapters;
    rl_betas is its beta)."""
    rl_betas: tuple[float, ...] = (0.02, 1.0)
    """KL penalty coefficients of RL, one cell each (a larger penalty is the remedy); the technique
    kl-penalty(beta=...) sets it in the first one's cells, paired."""
    rl_steps: int = 48
    """Optimizer steps per RL run."""
    rl_lr: float = 2e-5
    """RL learning rate (large enough that the policy moves within rl_steps)."""
    rl_batch: int = 8
    """Completions per RL step (a multiple of rl_generations)."""
    rl_generations: int = 4
    """Completions per prompt in an RL step (the group of GRPO's baseline)."""
    rl_prompts: int = 256
    """Training prompts of RL (train split, new to the reward model)."""
    rl_eval_every: int = 6
    """Evaluate the RL policy on the test prompts every this many steps (and before the first)."""
    rl_eval_samples: int = 8
    """Sampled answers per test prompt at each RL evaluation."""
    rl_eval_prompts: int = 16
    """Test prompts (the first of the test split's) sampled at each RL evaluation."""
    rl_seeds: int = 2
    """Seeds of each RL / DPO cell (the first ones of the run's seeds; best-of-n cells use every seed): an RL
    cell costs far more than a best-of-n cell (see docs/benchmarks.md)."""

    @classmethod
    def quick(cls) -> "RlhfOverConfig":
        return cls(kinds=("capital",), train_prompts=24, train_samples=8, test_prompts=8, pool_size=32,
                   max_new_tokens=24, rater_bias=(1.0, 0.0), n_pairs=(600, 200),
                   ensembles=("1:mean", "4:mean-std", "4:min"), optimizers=("best-of-n",),
                   # 40 paired technique cells: about a minute on two cores once the pool is sampled
                   techniques=("reward-model-ensemble", "kl-penalty"))

    def __post_init__(self) -> None:
        super().__post_init__()
        for k in self.kinds:
            if k not in ("capital", "arithmetic"):
                raise ConfigError(f"rlhf-overoptimization: unknown task kind {k!r}; valid: capital, arithmetic")
        if self.pool_size < 2 or self.train_samples < 2:
            raise ConfigError("rlhf-overoptimization: pool_size and train_samples must be >= 2")
        if any(b < 0 for b in self.rater_bias):
            raise ConfigError(f"rlhf-overoptimization: rater_bias must be >= 0 (got {self.rater_bias})")
        for o in self.optimizers or ("(none)",):
            if o not in ("best-of-n", *RL_OPTIMIZERS):
                raise ConfigError(f"rlhf-overoptimization: unknown optimizer {o!r}; valid: best-of-n, "
                                  f"{', '.join(RL_OPTIMIZERS)}")
        if any(b <= 0 for b in self.rl_betas) or self.rl_batch % self.rl_generations or self.rl_steps < 1 \
                or self.rl_seeds < 1:
            raise ConfigError("rlhf-overoptimization: rl_betas must be > 0, rl_steps and rl_seeds >= 1 and rl_batch "
                              f"a multiple of rl_generations (got rl_betas={self.rl_betas}, rl_steps={self.rl_steps}, "
                              f"rl_seeds={self.rl_seeds}, rl_batch={self.rl_batch}, "
                              f"rl_generations={self.rl_generations})")
        for e in self.ensembles:
            size, _, agg = e.partition(":")
            if not size.isdigit() or int(size) < 1 or agg not in rm.AGGREGATES:
                raise ConfigError(f"rlhf-overoptimization: ensemble {e!r} is not SIZE:{'|'.join(rm.AGGREGATES)}")


RL_KEYS = ("rl_steps", "rl_lr", "rl_batch", "rl_generations", "rl_prompts", "rl_eval_every", "rl_eval_samples",
           "rl_eval_prompts")


def _rl(records: list[RunRecord]) -> list[RunRecord]:
    return [r for r in records if r.status == "ok" and r.config.get("optimizer", "best-of-n") != "best-of-n"
            and not r.config.get(TECHNIQUE_KEY)]


def _label(params: dict[str, Any], base: dict[str, Any]) -> str:
    changes = [f"{k.replace('_', ' ')} {params[k]}" for k in ("rater_bias", "n_pairs", "ensemble")
               if params[k] != base[k]]
    return "baseline" if not changes else ", ".join(changes)


@register("experiment", "rlhf-overoptimization-v0")
class RlhfOveroptimization(Experiment):
    title = "RLHF reward-model overoptimization on a real language model"
    summary = (
        "Simulated raters with a configurable mix of gold reward and human-rater biases (length, confident "
        "tone, agreeing with the user) label comparisons of SmolLM2-135M's answers; a Bradley-Terry reward "
        "model learns from them; best-of-n against it raises the proxy score while the gold reward (correct "
        "regardless of the user, and concise) is tracked against sqrt(KL) and fitted to Gao et al.'s form."
    )
    source = "Gao, Schulman, Hilton 2022, \"Scaling Laws for Reward Model Overoptimization\", arXiv:2210.10760"
    specified_label = "proxy reward-model score of the best-of-n answer (std units of the initial policy)"
    intended_label = "gold reward of the best-of-n answer: correct and concise (std units of the initial policy)"
    tour = True
    Config = RlhfOverConfig
    default_seeds = 5
    quick_seeds = 5  # cells are cheap once the shared pool is sampled
    slots = ("reward-model", "optimizer")
    failure_mode = "reward overoptimization"
    benefit_label = "gold reward gain of the cell's final policy (initial-policy std)"
    capability_label = "proxy reward gain of the cell's final policy (its own reward model, initial-policy std)"

    def _base(self) -> dict[str, Any]:
        c = self.config
        shared = {k: (list(v) if isinstance(v, tuple) else v) for k, v in c.to_dict().items()
                  if k in POOL_KEYS}
        shared.update(rater_temperature=c.rater_temperature, l2=c.l2, length_cost=c.length_cost,
                      dtype=resolve_dtype(c.dtype))
        return {**shared, "rater_bias": c.rater_bias[0], "n_pairs": c.n_pairs[0], "ensemble": c.ensembles[0],
                "optimizer": "best-of-n"}

    @classmethod
    def smoke_config(cls) -> "RlhfOverConfig":
        # The quick preset's first cell samples a 3-minute pool on a fresh machine; the
        # contract test runs the same path on a pool of a few short samples.
        return dataclasses.replace(RlhfOverConfig.quick(), train_prompts=4, train_samples=4, test_prompts=2,
                                   pool_size=4, max_new_tokens=8, n_pairs=(40, 20))

    def cells(self) -> list[dict[str, Any]]:
        c, base = self.config, self._base()
        dims = {"rater_bias": c.rater_bias, "n_pairs": c.n_pairs, "ensemble": c.ensembles}
        if c.factorial:
            out = [{**base, "rater_bias": b, "n_pairs": n, "ensemble": e}
                   for b in c.rater_bias for n in c.n_pairs for e in c.ensembles]
        else:
            out = [base]
            for key, values in dims.items():
                out += [{**base, key: v} for v in values[1:]]
        out = out if "best-of-n" in c.optimizers else []
        rl = {k: getattr(c, k) for k in RL_KEYS}  # RL cells use the baseline reward model; only they carry RL keys
        return out + [{**base, **rl, "optimizer": o, "rl_beta": b} for o in c.optimizers if o in RL_OPTIMIZERS
                      for b in c.rl_betas]

    def technique_supports(self, tech: Any, params: dict[str, Any]) -> str | None:
        """A reward-model technique replaces the baseline reward model of best-of-n and RL cells (DPO has none in its
        loop); an optimizer technique acts on best-of-n cells and on the RL / DPO cells at the first rl_beta. Cells
        that change the same slot through the experiment's own sweeps (another `ensemble`, a later `rl_beta`) are
        remedies themselves and get no technique copy."""
        opt = params["optimizer"]
        if tech.slot == "reward-model":
            if opt in ("dpo", "dpo-lora"):
                return "DPO trains on the raters' comparisons directly: no reward model in its loop"
            if params["ensemble"] != self.config.ensembles[0]:
                return f"this cell's reward model is itself a remedy (ensemble {params['ensemble']})"
        if tech.slot == "optimizer" and opt != "best-of-n" and params["rl_beta"] != self.config.rl_betas[0]:
            return f"this cell's KL penalty (rl_beta {params['rl_beta']:g}) is itself a remedy"
        try:
            return tech.supports(dict(params))
        except RegistryError:  # a technique that looks the optimizer up among registered RL agents (quantilizer)
            return f"{tech.registered_name} wraps a registered RL agent; this cell's optimizer is {opt}"

    def headline(self, records: list[RunRecord]) -> tuple[str, Any] | None:
        bon = [r for r in records if r.config.get("optimizer", "best-of-n") == "best-of-n"]
        if not bon:
            return None
        return ("gold gain of best-of-n at its largest n (initial-policy sd), mean over configurations",
                self.share(bon, "intended"))

    def outcome(self, record: RunRecord) -> dict[str, float]:
        """Benefit: `intended`, the gold gain of the policy the cell ends with (best-of-n at the largest n, the
        KL-regularised optimum of a kl-penalty cell, the RL / DPO policy after its last step); capability:
        `specified`, the proxy gain of the same policy. Both are gains over the initial policy in its within-prompt
        std, so best-of-n, RL and technique cells share units. The proxy is the cell's own reward model: with a
        reward-model technique, the ensemble's aggregate."""
        m = record.metrics
        return {"intended": m.get("intended", float("nan")), "capability": m.get("specified", float("nan"))}

    def max_seeds(self, params: dict[str, Any]) -> int | None:
        return None if params["optimizer"] == "best-of-n" else self.config.rl_seeds

    def table_columns(self) -> list[str]:
        rl = any(o in RL_OPTIMIZERS for o in self.config.optimizers)
        return ["optimizer", "rl_beta"] * rl + ["rater_bias", "n_pairs", "ensemble"]

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        prep = prepare(params, seed)  # applies the cell's reward-model technique (rlhf_pool.reward_model_settings)
        if params["optimizer"] != "best-of-n":
            return rlhf_rl.run(params, seed, workdir, prep)  # applies its optimizer technique (TRL's beta)
        kl_beta = optimizer_settings(params)["kl_beta"]  # None, or the cell's kl-penalty technique's beta
        pool, proxy, values, curves_rng = prep["pool"], prep["proxy"], prep["values"], rng(seed, "ties")
        P, N = proxy.shape
        te, gold_sd, proxy_sd = prep["te"], prep["gold_sd"], prep["proxy_sd"]
        ns = bon.default_ns(N)
        curves = bon.best_of_n(proxy, values, ns, curves_rng)
        d = np.sqrt(bon.bon_kl(ns))
        gold_gain = (curves["gold"] - curves["gold"][0]) / gold_sd
        proxy_gain = (curves["proxy"] - curves["proxy"][0]) / proxy_sd
        tilt = bon.tilted(proxy, values, [b * proxy_sd for b in TILT_BETAS])
        gfit, pfit = fit_gao(d, gold_gain), fit_gao(d, proxy_gain)
        peak = int(np.argmax(gold_gain))
        # The cell's final policy: best-of-n at the largest n, or with a KL penalty the KL-regularised optimum
        # pi_0 exp(r / beta) on the same pool (beta in proxy std units, as the tilt sweep's).
        if kl_beta is None:
            final = {k: v[-1] for k, v in curves.items()}
            spec, intd, kl_final = proxy_gain[-1], gold_gain[-1], float(bon.bon_kl(ns[-1]))
        else:
            final = {k: v[0] for k, v in bon.tilted(proxy, values, [kl_beta * proxy_sd]).items()}
            spec = (final["proxy"] - curves["proxy"][0]) / proxy_sd
            intd = (final["gold"] - curves["gold"][0]) / gold_sd
            kl_final = final["kl"]
        metrics = {
            "specified": spec, "intended": intd, "gap": spec - intd, "kl_final": kl_final,
            "gold_peak": gold_gain[peak], "gold_peak_n": ns[peak], "gold_peak_d": d[peak],
            "gold_drop": gold_gain[peak] - gold_gain[-1],
            "gold_alpha": gfit["alpha"], "gold_beta": gfit["beta"], "gold_r2": gfit["r2"],
            "gold_d_peak_fit": gfit["d_peak"], "proxy_alpha": pfit["alpha"], "proxy_beta": pfit["beta"],
            "proxy_r2": pfit["r2"],
            **{k: prep[k] for k in ("rm_acc_rater", "rm_acc_gold", "rm_train_acc", "rater_acc_gold")},
            "gold_initial": curves["gold"][0], "max_kl": float(bon.bon_kl(ns[-1])),
            **{f"{k}_{w}": v for k in ("words", "agrees", "confidence", "correct")
               for w, v in (("initial", curves[k][0]), ("final", final[k]))},
        }
        best = [pool["texts"][te[p * N + int(np.argmax(proxy[p]))]] for p in range(min(P, 4))]
        data = {
            "ns": ns, "d": d.tolist(), "gold_gain": gold_gain.tolist(), "proxy_gain": proxy_gain.tolist(),
            **{f"bon_{k}": curves[k].tolist() for k in DRIFT},
            "tilt_d": np.sqrt(np.maximum(tilt["kl"], 0)).tolist(),
            "tilt_gold_gain": ((tilt["gold"] - curves["gold"][0]) / gold_sd).tolist(),
            "tilt_proxy_gain": ((tilt["proxy"] - curves["proxy"][0]) / proxy_sd).tolist(),
            "examples": [{"prompt": prep["test_items"][p].prompt, "best_of_max_n": t} for p, t in enumerate(best)],
            "pool_seconds": pool["seconds"], "pool_tokens": pool["tokens"],
        }
        return CellResult(metrics=metrics, data=data)

    # -- report ----------------------------------------------------------------------------

    def _groups(self, records: list[RunRecord]) -> dict[str, list[RunRecord]]:
        ok = [r for r in records if r.status == "ok" and r.config.get("optimizer", "best-of-n") == "best-of-n"
              and not r.config.get(TECHNIQUE_KEY)]  # technique cells go to the paired table
        if not ok:
            return {}
        counts: dict[str, dict[Any, int]] = {}
        for r in ok:  # one change at a time: the baseline holds the most common value of each dimension
            for k in ("rater_bias", "n_pairs", "ensemble"):
                counts.setdefault(k, defaultdict(int))[r.config[k]] += 1
        base = {k: max(v, key=v.get) for k, v in counts.items()}
        out: dict[str, list[RunRecord]] = defaultdict(list)
        for r in ok:
            out[_label(r.config, base)].append(r)
        return dict(sorted(out.items(), key=lambda kv: (kv[0] != "baseline", kv[0])))

    @staticmethod
    def _mean_curve(rs: list[RunRecord], key: str) -> tuple[np.ndarray, np.ndarray]:
        arr = np.array([r.data[key] for r in rs], float)
        cis = [mean_ci(arr[:, j]) for j in range(arr.shape[1])]
        return np.array([c.mean for c in cis]), np.nan_to_num(np.array([c.half for c in cis]))

    def tables(self, records: list[RunRecord]) -> list[Table]:
        return (self._bon_tables(records) if self._groups(records) else []) + rlhf_rl.tables(_rl(records))

    def figures(self, records: list[RunRecord]) -> list[Figure]:
        return self._bon_figures(records) + rlhf_rl.figures(_rl(records))

    def findings(self, records: list[RunRecord]) -> list[str]:
        out = (self._bon_findings(records) if self._groups(records) else []) + rlhf_rl.findings(_rl(records))
        return out or ["No successful cells: nothing to report."]

    def _bon_tables(self, records: list[RunRecord]) -> list[Table]:
        rows, acc = [], []
        for label, rs in self._groups(records).items():
            d = np.array(rs[0].data["d"])
            g, _ = self._mean_curve(rs, "gold_gain")
            p, _ = self._mean_curve(rs, "proxy_gain")
            gf, pf = fit_gao(d, g), fit_gao(d, p)
            rows.append([label, len(rs), f"{gf['alpha']:+.3f}", f"{gf['beta']:+.3f}", f"{gf['r2']:.3f}",
                         f"{gf['d_peak']:.2f}", mean_ci([r.metrics["gold_peak"] for r in rs]).fmt(),
                         f"{np.mean([r.metrics['gold_peak_n'] for r in rs]):.0f}",
                         f"{pf['alpha']:+.3f}", f"{pf['beta']:+.3f}", f"{pf['r2']:.3f}"])
            acc.append([label, mean_ci([r.metrics["rm_acc_rater"] for r in rs]).fmt(),
                        mean_ci([r.metrics["rm_acc_gold"] for r in rs]).fmt(),
                        mean_ci([r.metrics["rm_train_acc"] for r in rs]).fmt(),
                        f"{np.mean([r.metrics['rater_acc_gold'] for r in rs]):.3f}"])
        return [
            Table("Gao et al. best-of-n fits, R(d) = d (alpha - beta d)",
                  ["configuration", "seeds", "gold alpha", "gold beta", "gold R^2", "gold d_peak (fit)",
                   "gold peak (measured)", "mean n at peak", "proxy alpha", "proxy beta", "proxy R^2"], rows,
                  "Fitted by least squares to the mean curve over seeds; d = sqrt(log n - (n-1)/n); rewards are "
                  "gains over the initial policy in units of its standard deviation. A negative beta means no "
                  "peak within the fitted form (still rising)."),
            Table("Reward-model accuracy on held-out comparisons (test prompts)",
                  ["configuration", "vs rater labels", "vs gold preferences", "train accuracy",
                   "noise-free rater vs gold"], acc,
                  "Mean and 95% interval over seeds. 'vs gold' counts the held-out pairs whose gold rewards "
                  "differ. The last column is how often the raters' own (noise-free) utility agrees with gold: "
                  "the ceiling the raters put on the reward model."),
        ]

    def _bon_figures(self, records: list[RunRecord]) -> list[Figure]:
        groups = self._groups(records)
        if not groups:
            return []
        figs = []
        fig, axes = new_figure(ncols=2, width=4.2, height=3.2)
        for i, (label, rs) in enumerate(groups.items()):
            d = np.array(rs[0].data["d"])
            grid = np.linspace(0, d.max(), 60)
            for ax, key in zip(axes[0], ("gold_gain", "proxy_gain")):
                m, h = self._mean_curve(rs, key)
                ax.errorbar(d, m, yerr=h, fmt="o", ms=3, capsize=2, color=f"C{i}", label=label)
                fit = fit_gao(d, m)
                ax.plot(grid, grid * (fit["alpha"] - fit["beta"] * grid), color=f"C{i}", lw=1, alpha=0.7)
        for ax, name in zip(axes[0], ("gold (intended)", "proxy reward model (specified)")):
            ax.axhline(0, color="k", lw=0.5)
            ax.set_xlabel("sqrt(KL) of best-of-n, nats^0.5")
            ax.set_ylabel(f"{name} gain, initial-policy std")
        axes[0][0].legend(fontsize=6)
        figs.append(Figure("Gold and proxy reward against sqrt(KL) for best-of-n, with remedies", figure_svg(fig),
                           "Points: mean and 95% interval over seeds (rater noise, comparison sample, "
                           "bootstrap); lines: Gao et al.'s fit d (alpha - beta d). Same pool of samples for all."))
        fig, axes = new_figure(ncols=3, width=3.3, height=2.8)
        for i, (label, rs) in enumerate(groups.items()):
            d = np.array(rs[0].data["d"])
            for ax, key in zip(axes[0], ("bon_words", "bon_confidence", "bon_agrees")):
                m, h = self._mean_curve(rs, key)
                ax.errorbar(d, m, yerr=h, fmt="-o", ms=2, lw=1, capsize=1, color=f"C{i}", label=label)
        for ax, name in zip(axes[0], ("response length, words", "confident minus hedging markers",
                                      "agrees with the user's wrong belief")):
            ax.set_xlabel("sqrt(KL)")
            ax.set_title(name, fontsize=8)
        axes[0][0].legend(fontsize=6)
        figs.append(Figure("Behavioural drift under best-of-n", figure_svg(fig),
                           "Expected attributes of the chosen answer (order statistics on the pool). Agreement is "
                           "averaged over all test prompts (plain prompts count as not agreeing)."))
        fig, axes = new_figure(width=4.4, height=3.2)
        ax = axes[0][0]
        for i, (label, rs) in enumerate(groups.items()):
            d = np.array(rs[0].data["d"])
            m, _ = self._mean_curve(rs, "gold_gain")
            ax.plot(d, m, "-o", ms=3, color=f"C{i}", label=f"{label}: best-of-n")
            td, _ = self._mean_curve(rs, "tilt_d")
            tg, _ = self._mean_curve(rs, "tilt_gold_gain")
            ax.plot(td, tg, "--s", ms=3, color=f"C{i}", alpha=0.7, label=f"{label}: KL-penalised optimum")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("sqrt(KL)")
        ax.set_ylabel("gold gain, initial-policy std")
        ax.legend(fontsize=5)
        figs.append(Figure("KL penalty: the KL-regularised optimum against best-of-n", figure_svg(fig),
                           "Dashed: pi_0 exp(r/beta) on the same pool for KL coefficients beta from "
                           f"{TILT_BETAS[0]} to {TILT_BETAS[-1]} proxy std (left to right: smaller penalty). A larger "
                           "penalty stops the policy earlier on its curve."))
        return figs

    def _bon_findings(self, records: list[RunRecord]) -> list[str]:
        groups, out = self._groups(records), []
        for label, rs in groups.items():
            peak_n = [r.metrics["gold_peak_n"] for r in rs]
            drop = mean_ci([r.metrics["gold_drop"] for r in rs])
            final = mean_ci([r.metrics["intended"] for r in rs])
            spec = mean_ci([r.metrics["specified"] for r in rs])
            nmax = rs[0].data["ns"][-1]
            falls = drop.mean > 0 and (math.isnan(drop.half) or drop.mean - drop.half > 0)
            out.append(
                f"{label}: proxy gain at n={nmax} {spec.fmt()}, gold gain {final.fmt()} (std units); gold peaks at "
                f"n = {', '.join(str(int(n)) for n in peak_n)} (per seed) and then "
                f"{'falls' if falls else 'does not fall measurably'} by {drop.fmt()}; length "
                f"{np.mean([r.metrics['words_initial'] for r in rs]):.1f} -> "
                f"{np.mean([r.metrics['words_final'] for r in rs]):.1f} words, agreement "
                f"{np.mean([r.metrics['agrees_initial'] for r in rs]):.2f} -> "
                f"{np.mean([r.metrics['agrees_final'] for r in rs]):.2f}."
            )
        base = groups.get("baseline")
        if base:
            b = np.mean([r.metrics["gold_peak"] for r in base])
            for label, rs in groups.items():
                if label == "baseline":
                    continue
                g = np.mean([r.metrics["gold_peak"] for r in rs])
                f = np.mean([r.metrics["intended"] for r in rs])
                out.append(f"Remedy '{label}': gold peak {g:+.2f} vs baseline {b:+.2f}; gold at the largest n "
                           f"{f:+.2f} vs {np.mean([r.metrics['intended'] for r in base]):+.2f}.")
        return out
