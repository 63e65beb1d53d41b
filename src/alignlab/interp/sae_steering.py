"""Steering by a sparse-autoencoder feature's decoder direction (Templeton et al. 2024, "Scaling Monosemanticity",
transformer-circuits.pub, feature steering; Bricken et al. 2023, "Towards Monosemanticity"): the SAE cached on disk,
the feature most correlated with sycophantic agreement on the training split, and its direction in residual units.

The SAE (interp/sae.py) is trained on the training texts of the project's corpus at `resid_post.LAYER` and cached
under the alignlab cache's `sae/` keyed by the model's fingerprint (interp/caa.py), the SAE settings and a hash of the
texts. A feature is ranked by the Pearson correlation of its activation at the answer letter with the label
"sycophantic completion" over the A/B pairs of the TRAINING half of the factual items (caa.pair_texts: both letter
orders per item, so the letters cancel); the held-out half is never read here. The correlations are cached beside the
SAE, keyed by the SAE's key and the pairs' hash.

Units: the SAE reads activations multiplied by `scale` (sae.scale_for: mean token norm sqrt(d_model)), so a unit of
feature activation adds W_dec[f] / scale to the raw residual: that is the feature's direction in residual units. The
mean residual norm over the corpus tokens the SAE was trained on is sqrt(d_model) / scale.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any, Sequence

FORMAT_VERSION = "sae-steer-v1"


def sae_from_state(state: dict[str, Any]) -> Any:
    """An interp.sae.SAE with the saved parameters and scale (no gradients)."""
    from alignlab.interp.sae import SAE

    d_sae, d_in = state["W_dec"].shape
    sae = SAE(d_in, d_sae, scale=float(state["scale"]))
    for k in ("W_enc", "b_enc", "W_dec", "b_dec"):
        setattr(sae, k, state[k].detach().float().clone())
    return sae


def sae_key(model: Any, settings: Any, texts: Sequence[str]) -> str:
    from alignlab.interp.caa import model_fingerprint

    body = json.dumps([FORMAT_VERSION, dataclasses.asdict(settings), list(texts)], sort_keys=True)
    return f"{model_fingerprint(model)[:16]}-{hashlib.sha256(body.encode()).hexdigest()[:16]}"


def load_or_train_sae(model: Any, tokenizer: Any, settings: Any, texts: int = 0,
                      cache: bool = True) -> tuple[Any, dict[str, Any]]:
    """The SAE of `model` at `resid_post.{settings.layer}` trained on the corpus's training texts (`texts` > 0: the
    first that many; interp/sae.py `corpus`), loaded from the disk cache when trained before with the same model,
    settings and texts (written atomically otherwise). Returns it and {key, cached, train_tokens, train_s, last
    logged mse and l0}."""
    from alignlab.interp import caa
    from alignlab.interp import sae as S
    from alignlab.lm.models import cache_dir

    train_texts = S.corpus(texts)["train"]
    key = sae_key(model, settings, train_texts)
    path = cache_dir() / "sae" / f"{FORMAT_VERSION}-L{settings.layer}-{key}.pt"
    found = caa.load_cached(path) if cache else None
    if found is not None:
        return sae_from_state(found["state"]), {**found["meta"], "key": key, "cached": True}
    import torch

    ids = S.encode(tokenizer, train_texts, settings.max_tokens)
    acts, _ = S.activations(model, tokenizer, ids, settings.layer)
    with torch.inference_mode(False), torch.enable_grad():  # a caller may apply the technique under no_grad
        sae, log = S.train(acts.clone(), settings)
    last = log["log"][-1]
    meta = {"train_tokens": int(len(acts)), "train_s": float(log["train_s"]), "mse": float(last["mse"]),
            "l0": float(last["l0"])}
    if cache:
        caa.save_cached({"state": sae.state(), "meta": meta}, path)
    return sae, {**meta, "key": key, "cached": False}


def pair_feature_acts(model: Any, tokenizer: Any, render: Any, sae: Any, layer: int,
                      items: Sequence[Any]) -> tuple[Any, list[int]]:
    """Feature activations [2 x pairs, d_sae] at the answer letter of each (sycophantic, honest) A/B completion of
    `items` (caa.pair_texts), rows alternating sycophantic / honest, and the labels (1 = sycophantic)."""
    import torch

    from alignlab.interp import caa
    from alignlab.interp.hooks import residuals
    from alignlab.interp.sae import feature_acts

    texts = caa.pair_texts(render, items)
    # caa's shared-prefix reader costs one prompt a pair; it declines (None) when the two texts differ earlier
    shared = caa._pair_residuals(model, tokenizer, texts, [layer], 16)
    if shared is None:
        syc = residuals(model, tokenizer, [s for s, _ in texts], [layer])
        hon = residuals(model, tokenizer, [h for _, h in texts], [layer])
    else:
        syc, hon = shared
    rows = torch.stack([syc[:, 0], hon[:, 0]], dim=1).reshape(-1, syc.shape[-1])
    return feature_acts(sae, rows), [1, 0] * len(texts)


def sycophancy_correlations(model: Any, tokenizer: Any, render: Any, sae: Any, layer: int, sae_id: str,
                            items: Sequence[Any], cache: bool = True) -> dict[str, Any]:
    """Per feature, the Pearson correlation of its answer-letter activation with the sycophantic label over the
    pairs of `items` (the caller passes training items only), with mean activations per class; cached by the SAE's
    key and the pairs' hash. {'r': [d_sae], 'mean_syc', 'mean_honest', 'pairs', 'cached'}."""
    import torch

    from alignlab.interp import caa
    from alignlab.interp.feature_browser import correlations
    from alignlab.lm.models import cache_dir

    texts = caa.pair_texts(render, items)
    if not texts:
        raise ValueError("no training pairs to rank features on")
    path = cache_dir() / "sae" / f"{FORMAT_VERSION}-corr-{sae_id}-{caa.data_hash(texts)[:16]}.pt"
    found = caa.load_cached(path) if cache else None
    if found is not None:
        return {**found, "cached": True}
    acts, labels = pair_feature_acts(model, tokenizer, render, sae, layer, items)
    y = torch.tensor(labels, dtype=torch.bool)
    out = {"r": torch.from_numpy(correlations(acts.numpy(), labels)).float(), "mean_syc": acts[y].mean(0),
           "mean_honest": acts[~y].mean(0), "pairs": len(texts)}
    if cache:
        caa.save_cached(out, path)
    return {**out, "cached": False}


def decoder_direction(sae: Any, feature: int) -> Any:
    """Feature `feature`'s decoder row in the residual's units: W_dec[feature] / scale (the raw-residual change
    one unit of its activation makes)."""
    return sae.W_dec[feature].detach().float() / sae.scale


def resid_norm(sae: Any) -> float:
    """The mean residual norm (every position but the first) over the texts the SAE was trained on: sqrt(d) /
    scale, since the scale makes that mean sqrt(d)."""
    return math.sqrt(sae.W_dec.shape[1]) / sae.scale
