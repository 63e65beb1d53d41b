"""Linear probes on the residual stream, per layer (Marks and Tegmark 2023, "The Geometry of Truth", arXiv:2310.06824;
Burns et al. 2022, "Discovering Latent Knowledge in Language Models Without Supervision", arXiv:2212.03827).

Two labelled concepts, each with its items split by the same fixed hash as the steering vector's pairs (interp/caa.py
`split_of`: probes are fitted on the training items and scored on the held-out ones, never on a statement of an item
they were fitted on):

- truth: "<question> <answer>." with the item's correct answer (true) or its first distractor (false), read at the
  statement's last token (Marks and Tegmark read there);
- agreement with the user's wrong belief: the sycophancy-answer eval's turn where the user suggests a wrong answer,
  read at the last prompt token before the reply, labelled by what the model's own greedy reply then does (names
  the suggested answer or not, the eval's reader): can a linear read-out tell, before a word is generated, that the
  model is about to agree?

Probes are logistic regressions (scikit-learn) on standardized activations, and the mass-mean probe of Marks and
Tegmark (the difference of the class means as the direction, the midpoint as the threshold). Held-out accuracy
carries a bootstrap interval over items, beside the majority-class rate a constant guess gets.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from alignlab.interp.caa import split_of


def truth_statements(items: Sequence[Any]) -> tuple[list[str], list[int], list[str]]:
    """(texts, labels 1 = true, item ids): one true and one false statement per item."""
    texts, labels, ids = [], [], []
    for it in items:
        for answer, label in ((it.gold, 1), (it.distractors[0], 0)):
            texts.append(f"{it.question} {answer}.")
            labels.append(label)
            ids.append(it.id)
    return texts, labels, ids


def agreement_prompts(chat_model: Any, items: Sequence[Any], max_new_tokens: int = 24,
                      seed: int = 0) -> tuple[list[str], list[int], list[str], list[str]]:
    """(rendered prompts, labels 1 = the reply names the user's wrong suggestion, item ids, replies): the
    sycophancy-answer eval's 'wrong' arm, answered greedily by `chat_model`."""
    from alignlab.evals import factual as F
    from alignlab.evals.protocols import ANSWER_SUFFIX, suggest

    dialogues = [suggest(it.question, it.distractors[0], "wrong", ANSWER_SUFFIX, "alignlab") for it in items]
    convs = [[{"role": "user", "content": d.turns[0]}] for d in dialogues]
    replies = chat_model.chat(convs, max_new_tokens=max_new_tokens, temperature=0.0, seed=seed)
    labels = [int(F.names(r, it, it.distractors[0])) for r, it in zip(replies, items)]
    return [chat_model.render(c) for c in convs], labels, [it.id for it in items], replies


def mass_mean(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The mass-mean probe: direction mean(x | y=1) - mean(x | y=0), threshold halfway between the projections of
    the two means."""
    mu1, mu0 = x[y == 1].mean(axis=0), x[y == 0].mean(axis=0)
    w = mu1 - mu0
    return w, float((mu1 @ w + mu0 @ w) / 2)


def probe_layers(acts: np.ndarray, labels: Sequence[int], ids: Sequence[str], C: float = 0.1,
                 seed: int = 0) -> list[dict[str, Any]]:
    """Per layer: fit on the rows whose item is in the training split, score on the held-out rows. `acts` is
    [rows, layers, d_model]. Each entry: layer, logistic and mass-mean accuracy (bootstrap intervals over held-out
    rows), the majority-class rate of the held-out rows, and the row counts."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from alignlab.evals.stats import bootstrap_mean

    y = np.asarray(labels, dtype=int)
    train = np.array([split_of(i) == "train" for i in ids])
    test = ~train
    if len(set(y[train])) < 2 or not test.any():
        raise ValueError(f"probe needs both labels among the training rows and some held-out rows "
                         f"(train labels {sorted(set(y[train].tolist()))}, held-out rows {int(test.sum())})")
    majority = max(float(y[test].mean()), 1 - float(y[test].mean()))
    out = []
    for layer in range(acts.shape[1]):
        x = acts[:, layer].astype(np.float64)
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
        clf.fit(x[train], y[train])
        hits = (clf.predict(x[test]) == y[test]).astype(float)
        w, b = mass_mean(x[train], y[train])
        mm_hits = (((x[test] @ w) > b).astype(int) == y[test]).astype(float)
        acc = bootstrap_mean(hits, seed, f"probe-{layer}")
        mm = bootstrap_mean(mm_hits, seed, f"mm-{layer}")
        out.append({"layer": layer, "accuracy": acc.value, "lo": acc.lo, "hi": acc.hi,
                    "mass_mean": mm.value, "mm_lo": mm.lo, "mm_hi": mm.hi, "majority": majority,
                    "n_train": int(train.sum()), "n_test": int(test.sum()), "positive_test": float(y[test].mean())})
    return out
