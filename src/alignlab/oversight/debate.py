"""Debate on sklearn's 8x8 digits: a judge that sees k revealed pixels, and an honest and a lying debater who see the
whole image and reveal them (Irving, Christiano, Amodei 2018, "AI safety via debate", arXiv:1805.00899, sec. 3).

The judge is a small torch MLP on two 8x8 planes (a 0/1 mask of the revealed pixels and their values, zero elsewhere)
trained on k random non-zero pixels, as in the paper. In a debate the honest player claims the true label and the
liar a wrong one; they alternate revealing one non-zero pixel each (values cannot be faked) until k are shown, and
the judge picks the claim it scores higher. The liar precommits to each of the 9 wrong labels in turn and wins the
image if any lie wins. Debaters play by exact minimax (`exact`, a dynamic programme over revealed sets, see
debate_game.py) or by `search`: the same exact minimax restricted to a pool of candidate pixels per lie, half the
pixels that help the honest claim most on the judge's own average, half that help the lie most. The search is
checked against exact minimax wherever both run (the experiment records their agreement): the paper's MCTS is
replaced because weak search produced a false "last mover wins" result on this task.
"""

from __future__ import annotations

import dataclasses
from math import comb

import numpy as np

from alignlab.core.threads import one_thread
from alignlab.oversight.debate_game import HONEST, ORDERS, colex_subsets, minimax
from alignlab.vision import digits

CHUNK = 1 << 17
"""Subsets evaluated per batched judge call."""


@dataclasses.dataclass(frozen=True)
class JudgeSettings:
    k: int
    hidden: int = 64
    masks_per_image: int = 40
    epochs: int = 8
    batch: int = 256
    lr: float = 3e-3


def planes(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The judge's input (B, 2, 8, 8): the mask plane, and the pixel values where the mask is set."""
    m = masks.reshape(len(masks), digits.SIDE, digits.SIDE).astype(np.float32)
    return np.stack([m, m * images.reshape(m.shape)], axis=1)


def random_masks(images: np.ndarray, k: int, draws: int, gen: np.random.Generator) -> np.ndarray:
    """`draws` masks per image (rows grouped by image), each k distinct non-zero pixels drawn uniformly."""
    flat = images.reshape(len(images), -1)
    keys = gen.random((len(flat), draws, flat.shape[1]))
    keys[np.broadcast_to((flat <= 0)[:, None, :], keys.shape)] = -1.0  # zero pixels sort last: never chosen
    chosen = np.argsort(-keys, axis=2)[:, :, :k]
    masks = np.zeros(keys.shape, dtype=bool)
    np.put_along_axis(masks, chosen, True, axis=2)
    return masks.reshape(-1, flat.shape[1])


@one_thread()
def train_judge(x: np.ndarray, y: np.ndarray, s: JudgeSettings, seed: int):
    """The judge: digits.mlp on the two planes, fitted to k random non-zero pixels of each training image."""
    from alignlab.core.seeding import rng

    masks = random_masks(x, s.k, s.masks_per_image, rng(seed, "judge-masks", s.k))
    inputs = planes(np.repeat(x, s.masks_per_image, axis=0), masks)
    model = digits.mlp(hidden=s.hidden, in_features=2 * digits.N_PIXELS, seed=seed)
    return digits.fit(model, inputs, np.repeat(y, s.masks_per_image), epochs=s.epochs, lr=s.lr, batch=s.batch,
                      seed=seed)


def judge_logits(model, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.as_tensor(planes(images, masks))).numpy()


@one_thread()
def set_logits(model, image: np.ndarray, pixels: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """Judge logits (m x 10) for each row of `subsets` (indices into `pixels`, the image's flat pixel indices).

    The first layer of a judge on a sparse input is a sum of one column per revealed pixel (mask weight plus value
    times value weight), so each subset costs k gathers instead of a 128-wide product; equal to `model` on planes()."""
    import torch

    first = model[1]
    w, b = first.weight.detach(), first.bias.detach()
    vals = torch.as_tensor(image.reshape(-1)[pixels], dtype=torch.float32)
    idx = torch.as_tensor(pixels, dtype=torch.long)
    cols = (w[:, idx] + vals * w[:, digits.N_PIXELS + idx]).T.contiguous()   # (n, hidden)
    out = []
    with torch.no_grad():
        for start in range(0, len(subsets), CHUNK):
            sub = torch.from_numpy(np.ascontiguousarray(subsets[start:start + CHUNK].T, dtype=np.int64))
            hidden = b.expand(sub.shape[1], -1).clone()
            for row in sub:                                   # one gather-add per revealed pixel
                hidden += cols.index_select(0, row)
            out.append(model[2:](hidden))
    return torch.cat(out).numpy() if out else np.zeros((0, digits.N_CLASSES), np.float32)


@one_thread()
def pixel_scores(model, image: np.ndarray, label: int, k: int, contexts: int, gen: np.random.Generator) -> np.ndarray:
    """(n x 9): for each non-zero pixel and each lie, the judge's mean honest margin (true minus lie logit) over
    `contexts` random sets of k-1 other non-zero pixels with that pixel added: what the search ranks candidates by."""
    pixels = np.flatnonzero(image.reshape(-1) > 0)
    n = len(pixels)
    lies = [c for c in range(digits.N_CLASSES) if c != label]
    ctx = np.argsort(gen.random((contexts, n)), axis=1)[:, :k - 1]
    rows = []
    for c in ctx:
        masks = np.zeros((n, digits.N_PIXELS), dtype=bool)
        masks[:, pixels[c]] = True
        masks[np.arange(n), pixels] = True          # a pixel already in the context leaves k-1 revealed
        logits = judge_logits(model, np.repeat(image[None], n, axis=0), masks)
        rows.append(logits[:, [label]] - logits[:, lies])
    return np.mean(rows, axis=0)


@one_thread()
def debate_image(model, image: np.ndarray, label: int, k: int, method: str, *, pool: int = 14, contexts: int = 8,
                 ground: int = 40, seed: int = 0) -> dict:
    """Every debate on one image: for each move order, the minimax margin of each of the 9 lies (positive: the
    honest claim wins), and the cooperative oracle (the honest player reveals all k pixels).

    method `exact`: minimax over all C(n, k) revealed sets. `search`: minimax over a pool of `pool` candidates per
    lie (exact when n <= pool)."""
    from alignlab.core.seeding import rng

    if method not in ("exact", "search"):
        raise ValueError(f"method {method!r}: valid methods are exact, search")
    pixels = np.flatnonzero(image.reshape(-1) > 0)
    n, lies = len(pixels), [c for c in range(digits.N_CLASSES) if c != label]
    if n < k:
        raise ValueError(f"the image has {n} non-zero pixels, fewer than k={k}")
    if method == "exact" or n <= pool:
        m, sub = n, colex_subsets(max(ground, n), k)[:comb(n, k)]
        logits = set_logits(model, image, pixels, sub)
        leaf = logits[:, [label]] - logits[:, lies]
        best = (logits[:, label] - logits[:, lies].max(1)).max()
        table = max(ground, n)
    else:
        scores = pixel_scores(model, image, label, k, contexts, rng(seed, "debate-pool", label, k))
        order = np.argsort(-scores, axis=0, kind="stable")                     # per lie: most honest-helpful first
        pools = np.concatenate([order[:pool // 2], order[::-1][:pool - pool // 2]]).T   # (9, pool) into pixels
        m, sub = pool, colex_subsets(pool, k)
        leaf = np.empty((len(sub), len(lies)), dtype=np.float32)
        for j, lie in enumerate(lies):
            lg = set_logits(model, image, pixels[pools[j]], sub)
            leaf[:, j] = lg[:, label] - lg[:, lie]
        helpful = np.argsort(-scores.min(1), kind="stable")[:pool]               # the oracle's own candidates
        lg = set_logits(model, image, pixels[helpful], sub)
        best = (lg[:, label] - lg[:, lies].max(1)).max()
        table = pool
    out = {o: minimax(leaf, m, k, o, ground=table) for o in ORDERS}
    out["cooperative"] = leaf.max(0)                 # honest reveals all k, judge picks between the two claims
    out["cooperative_argmax"] = float(best)          # honest reveals all k, judge picks among all 10 labels
    return out


@one_thread()
def baseline(model, images: np.ndarray, labels: np.ndarray, k: int, draws: int, gen: np.random.Generator) -> dict:
    """The judge alone on k random non-zero pixels, `draws` per image: per image its share of correct verdicts and
    its mean confidence (the softmax probability of the label it picks)."""
    masks = random_masks(images, k, draws, gen)
    logits = judge_logits(model, np.repeat(images, draws, axis=0), masks)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    correct = (logits.argmax(1) == np.repeat(labels, draws)).reshape(len(images), draws)
    return {"correct": correct.mean(1), "confidence": p.max(1).reshape(len(images), draws).mean(1)}


def verdict(margins: np.ndarray) -> tuple[bool, float]:
    """(honest wins against every lie, the judge's confidence in its verdict in the debate the liar chose: the
    two-claim softmax probability of the label it picks, sigmoid(|margin|) of the liar's best lie)."""
    worst = float(np.min(margins))
    return worst > 0, float(1.0 / (1.0 + np.exp(-abs(worst))))


__all__ = ["HONEST", "JudgeSettings", "baseline", "debate_image", "judge_logits", "planes", "random_masks",
           "set_logits", "train_judge", "verdict"]
