"""RL against the frozen-feature reward model for rlhf-overoptimization (Gao, Schulman, Hilton 2022, arXiv:2210.10760).

The RL half of Gao et al.'s synthetic RLHF: the policy (SmolLM2-135M-Instruct) is trained
with TRL's GRPOTrainer or RLOOTrainer (`lm/rl.py`) against the SAME proxy reward model the
experiment trains for best-of-n: the Bradley-Terry head (or ensemble aggregate) applied to
hidden states of the policy's INITIAL weights at the configured layer, so the proxy is
frozen while the policy moves. Every completion is also scored by the gold reward
(`rewards/gold.py`) and described by the drift features (length, confidence, agreement).

Pressure is measured as d = sqrt(KL(pi || pi_init)), KL per sequence. Every `rl_eval_every`
steps (and before the first) the current policy samples `rl_eval_samples` answers to each
held-out test prompt (pure temperature sampling, as TRL trains), and the KL is computed
exactly per position along those samples (sum over the completion of KL between the two
next-token distributions, both at the sampling temperature): unbiased for the sequence KL
and never negative. The gold curve is fitted to Gao et al.'s RL form R(d) = d(alpha - beta log d).
The KL penalty coefficient (TRL's `beta`: the cell's `rl_beta`, or the kl-penalty technique's beta through
`rlhf_pool.optimizer_settings`) is the remedy: a larger one should stop the policy earlier on its curve
(Gao et al. found it acts like early stopping, not a better frontier). A reward-model technique reaches RL
through the cell's reward model (`prep["model"]`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from alignlab.experiments.gao_fits import fit_gao
from alignlab.experiments.rlhf_pool import describe, optimizer_settings

RL_OPTIMIZERS = ("grpo", "rloo", "dpo", "dpo-lora")
"""Policy optimizers of the RL cells; dpo trains on the raters' comparisons directly (rl_beta is its beta), every
weight or (dpo-lora) LoRA adapters through peft at 10x the learning rate."""
DRIFT = ("words", "confidence", "agrees", "correct")


class FrozenRMReward:
    """A TRL reward function: the frozen-feature reward model's score of each completion.

    Features are those the reward model was trained on (`rm.hidden_features` of the initial
    weights: prompt rendered by the chat template + the completion's token ids), so the proxy
    does not move with the policy. Gold and drift of each batch are kept in `history` and
    sent to TRL's log (`log_metric`); the policy never sees them.
    """

    __name__ = "frozen_rm"

    def __init__(self, feature_model: Any, tokenizer: Any, reward_model: Any, items: dict[str, Any], layer: int,
                 gold_config: Any):
        self.model, self.tok, self.rm, self.items = feature_model, tokenizer, reward_model, items
        self.layer, self.gold_config = layer, gold_config
        self.history: list[dict[str, float]] = []

    def prompt_ids(self, prompt: Any) -> list[int]:
        text = prompt if isinstance(prompt, str) else self.tok.apply_chat_template(
            prompt, tokenize=False, add_generation_prompt=True)
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def score_ids(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]) -> np.ndarray:
        from alignlab.rewards import reward_models as rm

        feats = rm.hidden_features(self.model, prompt_ids, completion_ids, layer=self.layer)
        return self.rm.score(feats)

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], completion_ids=None, item_id=None,
                 trainer_state=None, log_metric=None, **_: Any) -> list[float]:
        from alignlab.lm.rl import completion_text

        if completion_ids is None:  # called outside TRL: tokenize the text
            completion_ids = [self.tok(completion_text(c), add_special_tokens=False)["input_ids"]
                              for c in completions]
        proxy = self.score_ids([self.prompt_ids(p) for p in prompts], completion_ids)
        if item_id is not None:
            texts = [self.tok.decode(ids, skip_special_tokens=True).strip() for ids in completion_ids]
            attrs = describe([self.items[i] for i in item_id], texts, self.gold_config)
            row = {"step": float(getattr(trainer_state, "global_step", len(self.history))),
                   "proxy": float(proxy.mean()), **{k: float(v.mean()) for k, v in attrs.items()}}
            self.history.append(row)
            if log_metric is not None:
                for k in ("gold", *DRIFT):
                    log_metric(f"alignlab/{k}", row[k])
        return [float(x) for x in proxy]


def sequence_kl(policy: Any, ref: Any, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]],
                temperature: float = 1.0, batch_size: int = 0, autocast: bool = False) -> np.ndarray:
    """KL(pi_T || ref_T) per sequence: the exact next-token KL summed over the completion's positions.

    `autocast`: run both models under bf16 autocast, as a policy trained with bf16=True runs (its
    forward is wrapped by accelerate), so that the initial policy is at KL 0 from itself. Both models on one device
    (the policy's); batch_size 0: 8 sequences on the CPU, more on a GPU (`core.device.auto_batch`)."""
    import torch

    from alignlab.core import device

    where = device.model_device(policy)
    batch_size = device.auto_batch(batch_size, 8, where)
    out = np.zeros(len(prompt_ids))
    for s in range(0, len(prompt_ids), batch_size):
        rows = range(s, min(s + batch_size, len(prompt_ids)))
        seqs = [list(prompt_ids[i]) + list(completion_ids[i]) for i in rows]
        width = max(len(q) for q in seqs)
        ids = torch.zeros((len(seqs), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, q in enumerate(seqs):
            ids[r, :len(q)] = torch.tensor(q)
            mask[r, :len(q)] = 1
        ids, mask = ids.to(where), mask.to(where)
        with torch.inference_mode(), torch.autocast(where.type, dtype=torch.bfloat16, enabled=autocast):
            lp = torch.log_softmax(policy(input_ids=ids, attention_mask=mask).logits.float() / temperature, -1)
            lq = torch.log_softmax(ref(input_ids=ids, attention_mask=mask).logits.float() / temperature, -1)
            kl = (lp.exp() * (lp - lq)).sum(-1).cpu()  # [B, T]: KL of the next-token distributions after t
        for r, i in enumerate(rows):
            start, end = len(prompt_ids[i]), len(seqs[r])
            out[i] = float(kl[r, start - 1:end - 1].sum())  # positions that predict completion tokens
    return out


class Evaluator:
    """Samples the current policy on held-out prompts; records KL to the initial policy, proxy, gold, drift."""

    def __init__(self, reward: FrozenRMReward, ref: Any, items: Sequence[Any], samples: int, max_new_tokens: int,
                 temperature: float, seed: int, autocast: bool = False):
        self.reward, self.ref, self.items, self.autocast = reward, ref, list(items), autocast
        self.samples, self.max_new_tokens, self.temperature, self.seed = samples, max_new_tokens, temperature, seed
        tok = reward.tok
        self.rendered = [tok.apply_chat_template(it.messages(), tokenize=False, add_generation_prompt=True)
                         for it in self.items]
        self.rows: list[dict[str, float]] = []
        self.seconds = 0.0

    def __call__(self, policy: Any, step: int) -> None:
        from alignlab.lm import best_of_n as bon

        started = time.time()
        was_training = policy.training
        policy.eval()
        try:  # the same seed at every evaluation: common random numbers make the curve smoother
            comps = bon.sample(policy, self.reward.tok, self.rendered, self.samples, self.max_new_tokens,
                               self.temperature, top_p=1.0, seed=self.seed)
            p_ids = [self.reward.prompt_ids(t) for t in self.rendered for _ in range(self.samples)]
            c_ids = [c for cs in comps for c in cs]
            kl = sequence_kl(policy, self.ref, p_ids, c_ids, self.temperature, autocast=self.autocast)
        finally:
            policy.train(was_training)
        proxy = self.reward.score_ids(p_ids, c_ids)
        texts = [self.reward.tok.decode(c, skip_special_tokens=True).strip() for c in c_ids]
        attrs = describe([it for it in self.items for _ in range(self.samples)], texts, self.reward.gold_config)
        self.rows.append({"step": step, "kl": float(kl.mean()), "proxy": float(proxy.mean()),
                          **{k: float(v.mean()) for k, v in attrs.items()}, "example": texts[0]})
        self.seconds += time.time() - started


def eval_callback(evaluator: Evaluator, every: int, max_steps: int):
    """A transformers TrainerCallback running `evaluator` before step 1, every `every` steps and at the end."""
    from transformers import TrainerCallback

    class _Eval(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            evaluator(model, 0)

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % every == 0 or state.global_step == max_steps:
                evaluator(model, state.global_step)

    return _Eval()


def run(params: dict[str, Any], seed: int, workdir: Path, prep: dict[str, Any]):
    """One RL cell: train against the proxy, evaluate along the way, fit Gao's RL form. Returns a CellResult."""
    import torch
    from transformers import AutoModelForCausalLM

    from alignlab.lm import tasks
    from alignlab.lm.models import ModelSpec, load, resolve_path

    path = resolve_path(params["model"])
    feature_model, tok = load(ModelSpec(params["model"], dtype=params["dtype"], threads=1))
    ref = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()  # KL in the policy's dtype
    ref.to(feature_model.device)  # the policy trains where the feature model sits (core.device)
    all_items = [it for it in tasks.make_items() if it.kind in params["kinds"]]
    train_items = tasks.sample_prompts(tasks.split(all_items, "train"), params["rl_prompts"], params["pool_seed"] + 2)
    reward = FrozenRMReward(feature_model, tok, prep["model"], {it.id: it for it in all_items}, params["layer"],
                            prep["gold_config"])
    evaluator = Evaluator(reward, ref, prep["test_items"][:params["rl_eval_prompts"]], params["rl_eval_samples"],
                          params["max_new_tokens"], params["temperature"], seed=1000 + seed,
                          autocast=params["dtype"] == "bfloat16")
    steps = params["rl_steps"]
    beta = optimizer_settings(params)["kl_beta"]  # rl_beta, or the cell's KL-penalty technique's
    started = time.time()
    callbacks = [eval_callback(evaluator, params["rl_eval_every"], steps)]
    if params["optimizer"] in ("dpo", "dpo-lora"):  # no reward model in the loop: the raters' comparisons
        from alignlab.lm import dpo
        from alignlab.rewards.reward_models import comparisons_dataset

        prompts, chosen, rejected = zip(*prep["comparisons"])
        settings = dpo.DPOSettings(beta=beta, learning_rate=params["rl_lr"],
                                   lora=params["optimizer"] == "dpo-lora",
                                   batch_size=params["rl_batch"], max_steps=steps, bf16=params["dtype"] == "bfloat16",
                                   threads=1, seed=seed)
        trainer = dpo.train(path, comparisons_dataset(prompts, chosen, rejected), str(workdir / "trl"), settings,
                            callbacks=callbacks)
    else:
        trainer = _train_rl(params, seed, path, reward, train_items, workdir, callbacks, beta)
    wall = time.time() - started
    return _result(params, prep, trainer, evaluator, reward, wall, steps)


def _train_rl(params: dict[str, Any], seed: int, path: str, reward: Any, train_items: Sequence[Any], workdir: Path,
              callbacks: list[Any], beta: float):
    """GRPO / RLOO against the frozen reward model (TRL, lm/rl.py), KL coefficient `beta`."""
    from alignlab.lm import rl

    steps = params["rl_steps"]
    config = rl.RLConfig(algorithm=params["optimizer"], beta=beta,
                         num_generations=params["rl_generations"], max_completion_length=params["max_new_tokens"],
                         batch_size=params["rl_batch"], max_steps=steps, learning_rate=params["rl_lr"],
                         temperature=params["temperature"], bf16=params["dtype"] == "bfloat16", threads=1, seed=seed)
    data = rl.prompts_dataset([it.prompt or it.question for it in train_items], item_id=[it.id for it in train_items])
    return rl.train(path, reward, data, str(workdir / "trl"), config, callbacks=callbacks)


def _result(params: dict[str, Any], prep: dict[str, Any], trainer: Any, evaluator: Any, reward: Any, wall: float,
            steps: int):
    """The cell's metrics and data from the evaluations along training."""
    from alignlab.core.record import CellResult

    train_log = {int(e["step"]): e for e in trainer.state.log_history if "kl" in e}
    runtime = next((e["train_runtime"] for e in trainer.state.log_history if "train_runtime" in e), wall)
    sec_per_step = (runtime - evaluator.seconds) / steps

    ev = evaluator.rows
    gold_sd, proxy_sd = prep["gold_sd"], prep["proxy_sd"]
    kl = np.array([r["kl"] for r in ev])
    d = np.sqrt(np.maximum(kl, 0))
    gold_gain = (np.array([r["gold"] for r in ev]) - ev[0]["gold"]) / gold_sd
    proxy_gain = (np.array([r["proxy"] for r in ev]) - ev[0]["proxy"]) / proxy_sd
    gfit, pfit = fit_gao(d, gold_gain, form="rl"), fit_gao(d, proxy_gain, form="rl")
    train = [{**h, "kl_token": float(train_log.get(int(h["step"]) + 1, {}).get("kl", math.nan)),
              "mean_length": float(train_log.get(int(h["step"]) + 1, {}).get("completions/mean_length", math.nan)),
              "step_time": float(train_log.get(int(h["step"]) + 1, {}).get("step_time", math.nan))}
             for h in reward.history]
    peak = int(np.argmax(gold_gain))
    metrics = {
        "specified": proxy_gain[-1], "intended": gold_gain[-1], "gap": proxy_gain[-1] - gold_gain[-1],
        "gold_peak": gold_gain[peak], "gold_peak_d": d[peak], "gold_peak_step": ev[peak]["step"],
        "gold_drop": gold_gain[peak] - gold_gain[-1], "rl_kl_final": kl[-1], "kl_final": kl[-1],
        "gold_alpha": gfit["alpha"], "gold_beta": gfit["beta"], "gold_r2": gfit["r2"],
        "gold_d_peak_fit": gfit["d_peak"], "proxy_alpha": pfit["alpha"], "proxy_beta": pfit["beta"],
        "proxy_r2": pfit["r2"], "rl_seconds_per_step": sec_per_step, "rl_eval_seconds": evaluator.seconds,
        "rl_wall_seconds": wall, "rm_acc_rater": prep["rm_acc_rater"], "rm_acc_gold": prep["rm_acc_gold"],
        **{f"{k}_{w}": ev[j][k] for k in ("words", "agrees", "confidence", "correct")
           for w, j in (("initial", 0), ("final", -1))},
    }
    data = {"steps": [r["step"] for r in ev], "kl": kl.tolist(), "d": d.tolist(), "gold_gain": gold_gain.tolist(),
            "proxy_gain": proxy_gain.tolist(), **{f"rl_{k}": [r[k] for r in ev] for k in ("gold", "proxy", *DRIFT)},
            "examples": [{"step": r["step"], "prompt": evaluator.items[0].prompt, "answer": r["example"]} for r in ev],
            "train": train}
    return CellResult(metrics=metrics, data=data)


# -- report: gold and proxy against sqrt(KL) for each KL penalty, fitted to d (alpha - beta log d) -----------------

def _by_config(records: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in sorted(records, key=lambda r: (r.config["optimizer"], r.config["rl_beta"])):
        out.setdefault(f"{r.config['optimizer']}, KL penalty {r.config['rl_beta']:g}", []).append(r)
    return out


def _mean(rs: list[Any], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and 95% half-width over seeds of a per-evaluation curve (evaluations align across seeds)."""
    from alignlab.core.stats import mean_ci

    n = min(len(r.data[key]) for r in rs)
    arr = np.array([r.data[key][:n] for r in rs], float)
    cis = [mean_ci(arr[:, j]) for j in range(n)]
    return np.array([c.mean for c in cis]), np.nan_to_num(np.array([c.half for c in cis]))


def tables(records: list[Any]) -> list[Any]:
    from alignlab.core.section import Table
    from alignlab.core.stats import mean_ci

    groups = _by_config(records)
    if not groups:
        return []
    fits, evals = [], []
    for label, rs in groups.items():
        d, _ = _mean(rs, "d")
        g, _ = _mean(rs, "gold_gain")
        p, _ = _mean(rs, "proxy_gain")
        gf, pf = fit_gao(d, g, "rl"), fit_gao(d, p, "rl")
        peak = int(np.argmax(g))
        fits.append([label, len(rs), rs[0].config["rl_steps"], mean_ci([r.metrics["rl_kl_final"] for r in rs]).fmt(),
                     f"{gf['alpha']:+.3f}", f"{gf['beta']:+.3f}", f"{gf['r2']:.3f}", f"{gf['d_peak']:.2f}",
                     f"{g[peak]:+.3f}", int(rs[0].data["steps"][peak]), f"{pf['alpha']:+.3f}", f"{pf['beta']:+.3f}",
                     f"{pf['r2']:.3f}", f"{np.mean([r.metrics['rl_seconds_per_step'] for r in rs]):.1f}"])
        cols = {k: _mean(rs, k)[0] for k in ("kl", "proxy_gain", "gold_gain", "rl_proxy", "rl_gold", "rl_words",
                                             "rl_confidence", "rl_agrees", "rl_correct")}
        for j, step in enumerate(rs[0].data["steps"][:len(d)]):
            evals.append([label, int(step), f"{cols['kl'][j]:.2f}", f"{d[j]:.3f}", f"{cols['proxy_gain'][j]:+.3f}",
                          f"{cols['gold_gain'][j]:+.3f}", f"{cols['rl_proxy'][j]:+.3f}", f"{cols['rl_gold'][j]:+.3f}",
                          f"{cols['rl_words'][j]:.1f}", f"{cols['rl_confidence'][j]:+.2f}",
                          f"{cols['rl_agrees'][j]:.2f}", f"{cols['rl_correct'][j]:.2f}"])
    return [
        Table("Gao et al. RL fits, R(d) = d (alpha - beta log d)",
              ["configuration", "seeds", "steps", "final KL (nats)", "gold alpha", "gold beta", "gold R^2",
               "gold d_peak (fit)", "gold peak (measured)", "step at peak", "proxy alpha", "proxy beta",
               "proxy R^2", "s / step"], fits,
              "d = sqrt(KL(pi || pi_init)) per sequence on held-out prompts; rewards are gains over the initial "
              "policy in units of its within-prompt std (as for best-of-n). Fitted to the mean curve over seeds. "
              "A negative beta means the curve is still rising (no peak within the form). s / step excludes "
              "the evaluations."),
        Table("RL evaluations on held-out prompts", ["configuration", "step", "KL", "sqrt(KL)", "proxy gain",
                                                      "gold gain", "proxy (raw)", "gold (raw)", "words",
                                                      "confidence", "agrees", "correct"], evals,
              "Means over seeds of the samples drawn at each evaluation (the same sampling seed each time)."),
    ]


def figures(records: list[Any]) -> list[Any]:
    from alignlab.core.section import Figure, figure_svg, new_figure

    groups = _by_config(records)
    if not groups:
        return []
    fig, axes = new_figure(ncols=2, width=4.2, height=3.2)
    for i, (label, rs) in enumerate(groups.items()):
        d, _ = _mean(rs, "d")
        grid = np.linspace(max(d.max(), 1e-3) / 200, max(d.max(), 1e-3), 80)
        for ax, key in zip(axes[0], ("gold_gain", "proxy_gain")):
            m, h = _mean(rs, key)
            ax.errorbar(d, m, yerr=h if len(rs) > 1 else None, fmt="o", ms=3, capsize=2, color=f"C{i}", label=label)
            fit = fit_gao(d, m, "rl")
            ax.plot(grid, grid * (fit["alpha"] - fit["beta"] * np.log(grid)), color=f"C{i}", lw=1, alpha=0.7)
    for ax, name in zip(axes[0], ("gold (intended)", "proxy reward model (specified)")):
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("sqrt(KL(pi || pi_init)), nats^0.5")
        ax.set_ylabel(f"{name} gain, initial-policy std")
    axes[0][0].legend(fontsize=6)
    out = [Figure("RL against the proxy reward model: gold and proxy against sqrt(KL), two KL penalties",
                  figure_svg(fig), "Points: evaluations on held-out prompts (every few steps, KL per sequence); "
                  "lines: Gao et al.'s RL fit d (alpha - beta log d). A larger KL penalty is the remedy.")]
    fig, axes = new_figure(ncols=3, width=3.3, height=2.8)
    for i, (label, rs) in enumerate(groups.items()):
        d, _ = _mean(rs, "d")
        for ax, key in zip(axes[0], ("rl_words", "rl_confidence", "rl_agrees")):
            ax.plot(d, _mean(rs, key)[0], "-o", ms=2, lw=1, color=f"C{i}", label=label)
    for ax, name in zip(axes[0], ("response length, words", "confident minus hedging markers",
                                  "agrees with the user's wrong belief")):
        ax.set_xlabel("sqrt(KL)")
        ax.set_title(name, fontsize=8)
    axes[0][0].legend(fontsize=6)
    out.append(Figure("Behavioural drift under RL", figure_svg(fig), "Means over the evaluation samples."))
    return out


def findings(records: list[Any]) -> list[str]:
    out = []
    for label, rs in _by_config(records).items():
        m = {k: float(np.mean([r.metrics[k] for r in rs])) for k in rs[0].metrics}
        out.append(f"RL ({label}): after {rs[0].config['rl_steps']} steps KL = {m['rl_kl_final']:.2f} nats; proxy gain "
                   f"{m['specified']:+.2f}, gold gain {m['intended']:+.2f} (std units); gold peaked at "
                   f"{m['gold_peak']:+.2f} (sqrt KL {m['gold_peak_d']:.2f}) and ended {m['gold_drop']:.2f} below it; "
                   f"fit alpha {m['gold_alpha']:+.2f}, beta {m['gold_beta']:+.2f}, R^2 {m['gold_r2']:.2f}; length "
                   f"{m['words_initial']:.1f} -> {m['words_final']:.1f} words, agreement {m['agrees_initial']:.2f} -> "
                   f"{m['agrees_final']:.2f}; {m['rl_seconds_per_step']:.1f} s per step.")
    return out
