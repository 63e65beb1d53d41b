"""The shared sample pool and proxy reward model of the RLHF overoptimization experiment
(Gao, Schulman, Hilton 2022, arXiv:2210.10760): one sampling pass of the policy, cached on
disk with hidden-state features, serves every best-of-n and RL cell; `prepare` adds gold and
drift attributes, simulated-rater labels and the Bradley-Terry reward model of one cell.
`reward_model_settings` and `optimizer_settings` are the two technique slots' settings dicts: each cell's
own parameters, then its technique (if any) applied to them.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from alignlab.core.config import stable_hash
from alignlab.core.experiment import Experiment
from alignlab.core.seeding import rng
from alignlab.lm import best_of_n as bon
from alignlab.lm import tasks
from alignlab.rewards import gold as goldmod
from alignlab.rewards import raters as ratermod
from alignlab.rewards import reward_models as rm

POOL_KEYS = ("model", "dtype", "kinds", "train_prompts", "train_samples", "test_prompts", "pool_size",
             "max_new_tokens", "temperature", "layer", "pool_seed")


def _pool_dir(params: dict[str, Any]) -> Path:
    from alignlab.lm.models import cache_dir

    return cache_dir() / "rlhf-pools" / stable_hash({k: params[k] for k in POOL_KEYS})


def load_pool(params: dict[str, Any]) -> dict[str, Any]:
    """Sample (once, cached on disk under a lock) the train and test pools and their features."""
    folder = _pool_dir(params)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "pool.json").exists():
            _build_pool(params, folder)
    meta = json.loads((folder / "pool.json").read_text())
    meta["features"] = np.load(folder / "features.npy").astype(np.float64)
    return meta


def _build_pool(params: dict[str, Any], folder: Path) -> None:
    from alignlab.lm.models import ModelSpec, load

    started = time.time()
    items = [it for it in tasks.make_items() if it.kind in params["kinds"]]
    train = tasks.sample_prompts(tasks.split(items, "train"), params["train_prompts"], params["pool_seed"])
    test = tasks.sample_prompts(tasks.split(items, "test"), params["test_prompts"], params["pool_seed"] + 1)
    # One thread unless OMP_NUM_THREADS says more: on a busy 2-core box one was faster; on a quiet one two sample
    # the pool 1.45x faster (measured). Runner workers always get one.
    threads = max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    model, tok = load(ModelSpec(params["model"], dtype=params["dtype"], threads=threads))
    texts, groups, split, prompt_ids, comp_ids = [], [], [], [], []
    for name, chosen, n in (("train", train, params["train_samples"]), ("test", test, params["pool_size"])):
        rendered = [tok.apply_chat_template(it.messages(), tokenize=False, add_generation_prompt=True)
                    for it in chosen]
        comps = bon.sample(model, tok, rendered, n, max_new_tokens=params["max_new_tokens"],
                           temperature=params["temperature"], seed=params["pool_seed"] * 2 + (name == "test"),
                           progress=_Progress(f"rlhf pool ({name} split)"))
        for p, (text, cs) in enumerate(zip(rendered, comps)):
            p_ids = tok(text, add_special_tokens=False)["input_ids"]
            for c in cs:
                texts.append(tok.decode(c, skip_special_tokens=True).strip())
                groups.append(p)
                split.append(name)
                prompt_ids.append(p_ids)
                comp_ids.append(c)
    feats = rm.hidden_features(model, prompt_ids, comp_ids, layer=params["layer"])
    np.save(folder / "features.npy", feats.astype(np.float16))
    meta = {"train_items": [it.id for it in train], "test_items": [it.id for it in test], "texts": texts,
            "groups": groups, "split": split, "seconds": time.time() - started,
            "tokens": int(sum(len(c) for c in comp_ids))}
    (folder / "pool.json").write_text(json.dumps(meta))


class _Progress:
    """A line on stderr at most every 30 s while the pool samples (it runs inside a cell, under the CLI's bar)."""

    def __init__(self, what: str, every: float = 30.0):
        self.what, self.every, self.started = what, every, time.time()
        self.last = self.started

    def __call__(self, done: int, total: int) -> None:
        now = time.time()
        if now - self.last < self.every and done < total:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        left = (total - done) / rate if rate > 0 else float("inf")
        print(f"{self.what}: {done}/{total} samples, {rate:.1f}/s, ~{left / 60:.0f} min left", file=sys.stderr,
              flush=True)


def describe(items: Sequence[Any], texts: Sequence[str], gold_config: Any) -> dict[str, np.ndarray]:
    """Gold reward and drift attributes (words, confidence, hedges, agrees, correct) of each (item, response)."""
    f = [goldmod.features(it, t, gold_config) for it, t in zip(items, texts)]
    return {"gold": np.array([x.gold for x in f], float), "words": np.array([x.words for x in f], float),
            "confidence": np.array([x.confidence for x in f], float),
            "hedges": np.array([x.hedges for x in f], float), "agrees": np.array([x.agrees for x in f]),
            "correct": np.array([x.correct for x in f])}


def reward_model_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The cell's reward-model settings, `rm.fit_ensemble`'s keyword arguments (size, aggregate, k, l2): the
    `ensemble` grid dimension (SIZE:AGGREGATE), then the cell's `reward-model` technique, if any, applied to them."""
    size, _, agg = params["ensemble"].partition(":")
    settings = {"size": int(size), "aggregate": agg, "k": 1.0, "l2": params["l2"]}
    tech = Experiment.technique(params, "reward-model")
    return settings if tech is None else tech.apply(settings)


def optimizer_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The cell's optimizer settings: {"optimizer": NAME, "kl_beta": KL coefficient}, then the cell's `optimizer`
    technique, if any, applied to them. kl_beta is the RL / DPO cells' `rl_beta` (TRL's beta); None for best-of-n
    (every n from the pool; the cell's policy is the largest n), and a number there makes the cell's policy the
    KL-regularised optimum pi_0 exp(r / beta) on the pool, beta in units of the proxy's within-prompt std."""
    settings = {"optimizer": params["optimizer"], "kl_beta": params.get("rl_beta")}
    tech = Experiment.technique(params, "optimizer")
    return settings if tech is None else tech.apply(settings)


def prepare(params: dict[str, Any], seed: int) -> dict[str, Any]:
    """The pool, its gold and drift attributes, the rater labels and the proxy reward model of one cell."""
    pool = load_pool(params)
    items = {it.id: it for it in tasks.make_items()}
    split, groups = np.array(pool["split"]), np.array(pool["groups"])
    prompt_items = {"train": [items[i] for i in pool["train_items"]],
                    "test": [items[i] for i in pool["test_items"]]}
    cfg = goldmod.GoldConfig(length_cost=params["length_cost"])
    attrs = describe([prompt_items[s][g] for s, g in zip(split, groups)], pool["texts"], cfg)
    feats = pool["features"]
    rater = ratermod.preset("biased", bias=params["rater_bias"], temperature=params["rater_temperature"])
    util = ratermod.utility(rater, attrs["gold"], attrs["words"], attrs["confidence"], attrs["agrees"])
    tr, te = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    pairs = tr[ratermod.sample_pairs(groups[tr], params["n_pairs"], rng(seed, "pairs"))]
    labels = ratermod.compare(rater, util[pairs[:, 0]], util[pairs[:, 1]], rng(seed, "labels"))
    held = te[ratermod.sample_pairs(groups[te], 2000, rng(seed, "held-out"))]
    held_labels = ratermod.compare(rater, util[held[:, 0]], util[held[:, 1]], rng(seed, "held-labels"))
    model = rm.fit_ensemble(feats, pairs, labels, **reward_model_settings(params), rng=rng(seed, "bootstrap"),
                            reference=feats[tr])
    scores = model.score(feats)
    P = len(prompt_items["test"])
    N = len(te) // P
    proxy = scores[te].reshape(P, N)
    values = {k: v[te].reshape(P, N) for k, v in attrs.items()}
    return {
        "pool": pool, "model": model, "gold_config": cfg, "test_items": prompt_items["test"], "te": te,
        "proxy": proxy, "values": values,
        # within-prompt standard deviation over the initial policy's samples: the spread optimisation selects from
        "gold_sd": float(np.sqrt(values["gold"].var(axis=1).mean())) or 1.0,
        "proxy_sd": float(np.sqrt(proxy.var(axis=1).mean())) or 1.0,
        "rm_acc_rater": rm.preference_accuracy(scores, held, held_labels),
        "rm_acc_gold": rm.gold_accuracy(scores, attrs["gold"], held),
        "rm_train_acc": rm.preference_accuracy(scores, pairs, labels),
        "rater_acc_gold": rm.gold_accuracy(util, attrs["gold"], held),  # noise-free rater vs gold
        # the raters' comparisons as (prompt, chosen, rejected) texts: what DPO trains on
        "comparisons": [(prompt_items["train"][groups[i]].messages()[0]["content"],
                         pool["texts"][i if lab else j], pool["texts"][j if lab else i])
                        for (i, j), lab in zip(pairs, labels)],
    }
