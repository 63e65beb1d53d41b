"""A feature browser for sparse-autoencoder features: the features most correlated with a behaviour, and their
top-activating contexts with each token shaded by the feature's activation (the feature dashboards of Bricken et al.
2023, "Towards Monosemanticity", and of Neuronpedia; the behaviours from Sharma et al. 2023, arXiv:2310.13548,
sycophancy, and refusals judged by `evals/judge.py`).

Labelled texts are read at their last token (interp/hooks.py `residuals`), encoded by the SAE, and each feature is
ranked by the Pearson correlation of its activation with the binary label (the point-biserial correlation). The page
is one self-contained HTML fragment: inline styles, no scripts, nothing fetched.
"""

from __future__ import annotations

import html
from typing import Any, Sequence

import numpy as np


def correlations(feature_acts: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """Pearson correlation of each feature's activation (columns of [rows, features]) with the 0/1 labels; 0 for
    features that are constant over the rows."""
    x = np.asarray(feature_acts, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    xc, yc = x - x.mean(axis=0), y - y.mean()
    denom = np.sqrt((xc ** 2).sum(axis=0) * (yc ** 2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc[:, None]).sum(axis=0) / denom
    return np.nan_to_num(r, nan=0.0)


def top_features(feature_acts: np.ndarray, labels: Sequence[int], k: int = 4) -> list[dict[str, Any]]:
    """The k features most positively correlated with the label: feature index, correlation, mean activation on
    each class and how often it fires on each."""
    r = correlations(feature_acts, labels)
    y = np.asarray(labels, dtype=bool)
    out = []
    for f in np.argsort(-r)[:k]:
        col = feature_acts[:, f]
        out.append({"feature": int(f), "r": float(r[f]), "mean_pos": float(col[y].mean()),
                    "mean_neg": float(col[~y].mean()), "fires_pos": float((col[y] > 0).mean()),
                    "fires_neg": float((col[~y] > 0).mean())})
    return out


def top_contexts(acts: Any, where: Any, ids: Sequence[Sequence[int]], tokenizer: Any, feature: int, k: int = 5,
                 before: int = 10, after: int = 3) -> list[dict[str, Any]]:
    """The k tokens (of distinct texts) where `feature` is most active: each a window of tokens around it with every
    token's activation of the feature. `acts`: feature activations [tokens, features]; `where`: [tokens, 2] =
    (text index, position), as `sae.activations` returns."""
    col = acts[:, feature]
    order = col.argsort(descending=True)
    per_text: dict[int, dict[int, float]] = {}
    for row in range(len(col)):
        per_text.setdefault(int(where[row, 0]), {})[int(where[row, 1])] = float(col[row])
    out, used = [], set()
    for row in order.tolist():
        if len(out) >= k or float(col[row]) <= 0:
            break
        text, pos = int(where[row, 0]), int(where[row, 1])
        if text in used:
            continue
        used.add(text)
        lo, hi = max(0, pos - before), min(len(ids[text]), pos + after + 1)
        out.append({"max": float(col[row]), "at": pos - lo,
                    "tokens": [(tokenizer.decode([ids[text][p]]), per_text[text].get(p, 0.0)) for p in range(lo, hi)]})
    return out


def _token_html(token: str, value: float, peak: float, is_max: bool) -> str:
    alpha = 0.0 if peak <= 0 else max(0.0, min(1.0, value / peak))
    border = "border-bottom:2px solid #b00;" if is_max else ""
    title = html.escape(f"{value:.3f}", quote=True)
    shown = html.escape(token).replace("\n", "\u21b5")
    return (f'<span class="tok" title="{title}" data-act="{value:.4f}" '
            f'style="background:rgba(255,120,0,{alpha:.2f});{border}white-space:pre">{shown}</span>')


def render(groups: Sequence[dict[str, Any]]) -> str:
    """HTML for the browser: `groups` = [{"title", "caption", "features": [{feature, r, ..., "contexts": [...]}]}]."""
    parts = ['<div class="feature-browser" style="font-family:sans-serif;font-size:13px">']
    for g in groups:
        parts.append(f'<h4 style="margin:.6em 0 .2em">{html.escape(g["title"])}</h4>')
        if g.get("caption"):
            parts.append(f'<p style="margin:0 0 .4em;color:#444">{html.escape(g["caption"])}</p>')
        for f in g["features"]:
            head = (f"feature {f['feature']}: r = {f['r']:.3f}; mean activation {f['mean_pos']:.3f} vs "
                    f"{f['mean_neg']:.3f}; fires on {100 * f['fires_pos']:.0f}% vs {100 * f['fires_neg']:.0f}%")
            parts.append(f'<div class="feature" data-feature="{f["feature"]}" style="margin:.3em 0 .6em">'
                         f'<div style="font-weight:bold">{html.escape(head)}</div>')
            if not f.get("contexts"):
                parts.append('<div class="context" style="color:#777">never active on the corpus</div>')
            for c in f.get("contexts", []):
                toks = "".join(_token_html(t, v, c["max"], i == c["at"]) for i, (t, v) in enumerate(c["tokens"]))
                parts.append(f'<div class="context" style="font-family:monospace;margin:2px 0">'
                             f'<span style="color:#777">{c["max"]:.2f}</span> {toks}</div>')
            parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def sycophancy_rows(render: Any, n_items: int) -> tuple[list[str], list[int]]:
    """(texts, labels 1 = sycophantic): the A/B sycophancy pairs of interp/caa.py (both letter orders, so the letters
    cancel), each rendered question followed by '(' and the sycophantic or the honest letter."""
    from alignlab.interp import caa

    items = (caa.factual_split("train") + caa.factual_split("test"))[:n_items]
    texts, labels = [], []
    for syc, honest in caa.pair_texts(render, items):
        texts += [syc, honest]
        labels += [1, 0]
    return texts, labels


def refusal_rows(chat_model: Any, n_prompts: int, max_new_tokens: int = 24) -> tuple[list[str], list[int], float]:
    """(rendered prompts, labels 1 = the model's greedy reply refuses, judge's unparsed share): the red-team prompts
    of cai/data (harmful and harmless look-alikes), replies judged by `evals.judge.RefusalJudge` with the same model."""
    from alignlab.cai import prompts as P
    from alignlab.evals.judge import RefusalJudge

    items = list(P.load())[:n_prompts]
    convs = [[{"role": "user", "content": p.prompt}] for p in items]
    replies = chat_model.chat(convs, max_new_tokens=max_new_tokens, temperature=0.0, seed=0)
    judge = RefusalJudge(chat_model)
    labels = [int(v) for v in judge.refuses([p.prompt for p in items], replies)]
    return [chat_model.render(c) for c in convs], labels, judge.unparsed / max(1, len(items))


def browse(model: Any, tokenizer: Any, sae: Any, layer: int, corpus_acts: Any, where: Any,
           ids: Sequence[Sequence[int]], n_items: int = 40, n_prompts: int = 48, k: int = 3) -> dict[str, Any]:
    """The browser's data: for sycophancy and refusal, the k features most correlated with the label (last-token
    activations) and each one's top contexts in the corpus (`corpus_acts`: raw residuals [tokens, d], `where` and
    `ids` as `sae.activations` and `sae.encode` give them)."""
    from alignlab.interp.hooks import residuals
    from alignlab.interp.sae import feature_acts
    from alignlab.lm.chat import LocalChatModel

    chat = LocalChatModel(model, tokenizer, name="sae-browser", prefix_cache=False)
    corpus_f = feature_acts(sae, corpus_acts)
    groups = []
    syc_texts, syc_labels = sycophancy_rows(chat.render, n_items)
    ref_texts, ref_labels, unparsed = refusal_rows(chat, n_prompts)
    for name, texts, labels, caption in (
            ("sycophantic agreement", syc_texts, syc_labels,
             f"{len(syc_texts) // 2} A/B pairs: the answer letter that agrees with the user's wrong suggestion vs the "
             "correct one (letters balanced)."),
            ("refusal", ref_texts, ref_labels,
             f"{len(ref_texts)} red-team and look-alike prompts, read at the last prompt token; label: the model's "
             f"own reply refuses ({sum(ref_labels)} of {len(ref_labels)}), judged by the refusal judge "
             f"({100 * unparsed:.0f}% unparsed verdicts counted as no).")):
        if len(set(labels)) < 2:
            groups.append({"title": f"Features of {name}", "caption": caption + " Only one label occurred: no "
                           "correlation to rank.", "features": []})
            continue
        x = feature_acts(sae, residuals(model, tokenizer, texts, [layer])[:, 0]).numpy()
        feats = top_features(x, labels, k)
        for f in feats:
            f["contexts"] = top_contexts(corpus_f, where, ids, tokenizer, f["feature"])
        groups.append({"title": f"Features of {name}", "caption": caption, "features": feats})
    return {"groups": groups}
