"""Weak-to-strong generalization: a weak supervisor trained on ground truth labels data for a stronger student,
trained naively or with the auxiliary confidence loss; performance gap recovered (Burns et al. 2023, "Weak-to-Strong
Generalization: Eliciting Strong Capabilities With Weak Supervision", arXiv:2312.09390).

Two offline tasks: sklearn's 8x8 digits (the weak supervisor is a linear model on the 4x4 average-pooled image, the
student an MLP on the full image) and a tabular task generated here (sklearn's make_classification with several
clusters per class: a linear supervisor, an MLP student). The students are trained from scratch, not pretrained: the
paper's strong students bring latent knowledge from pretraining, ours only an architecture, so what they recover
comes from inductive bias alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from alignlab.core.threads import one_thread

TASKS = ("digits", "tabular")


@dataclasses.dataclass(frozen=True)
class Task:
    """Features for the weak and the strong model (same rows), labels; train halves A (the supervisor's ground
    truth) and B (labelled by the supervisor for the student), and a test set."""

    weak_x: np.ndarray
    strong_x: np.ndarray
    y: np.ndarray
    a: np.ndarray
    b: np.ndarray
    test: np.ndarray
    n_classes: int


def load_task(name: str, seed: int) -> Task:
    """The task's data with a split drawn from `seed` (the data set itself is fixed)."""
    from alignlab.core.seeding import rng

    if name == "digits":
        from alignlab.vision import digits

        split = digits.load()
        x = np.concatenate([split.x_train, split.x_test])
        y = np.concatenate([split.y_train, split.y_test])
        pooled = x.reshape(len(x), 4, 2, 4, 2).mean((2, 4)).reshape(len(x), -1)
        weak_x, strong_x, n_classes = pooled, x.reshape(len(x), -1), digits.N_CLASSES
    elif name == "tabular":
        from sklearn.datasets import make_classification

        strong_x, y = make_classification(n_samples=3000, n_features=20, n_informative=8, n_redundant=4,
                                          n_clusters_per_class=4, class_sep=1.5, flip_y=0.0, random_state=0)
        strong_x = ((strong_x - strong_x.mean(0)) / strong_x.std(0)).astype(np.float32)
        weak_x, n_classes = strong_x, 2
    else:
        raise ValueError(f"task {name!r}: valid tasks are {', '.join(TASKS)}")
    order = rng(seed, "w2s-split", name).permutation(len(y))
    n_test = len(y) // 4
    test, train = order[:n_test], order[n_test:]
    half = len(train) // 2
    return Task(weak_x.astype(np.float32), strong_x.astype(np.float32), y.astype(np.int64), train[:half],
                train[half:], test, n_classes)


def weak_model(task: Task, seed: int):
    """The weak supervisor: a linear classifier (torch) on the task's weak features."""
    import torch

    torch.manual_seed(seed)
    return torch.nn.Linear(task.weak_x.shape[1], task.n_classes)


def strong_model(task: Task, seed: int, hidden: int = 256):
    from alignlab.vision import digits

    return digits.mlp(hidden=hidden, in_features=task.strong_x.shape[1], n_classes=task.n_classes, seed=seed)


@one_thread()
def train(model, x: np.ndarray, targets: np.ndarray, *, epochs: int, seed: int, aux_alpha: float = 0.0,
          warmup: float = 0.2, lr: float = 1e-3, batch: int = 64):
    """Cross-entropy on `targets` (class ids, or probability rows: soft labels). With `aux_alpha` > 0, the auxiliary
    confidence loss of Burns et al. (eq. 1): (1 - a) CE(f, f_w) + a CE(f, hardened f), the student's own argmax as the
    hardened label, a warmed up linearly from 0 over the first `warmup` share of the steps."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    xt, tt = torch.as_tensor(x), torch.as_tensor(targets)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    total = epochs * -(-len(xt) // batch)
    step = 0
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=g).split(batch):
            logits = model(xt[idx])
            loss = F.cross_entropy(logits, tt[idx])
            if aux_alpha > 0:
                a = aux_alpha * min(1.0, step / max(1.0, warmup * total))
                loss = (1 - a) * loss + a * F.cross_entropy(logits, logits.detach().argmax(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    return model.eval()


def predict(model, x: np.ndarray) -> np.ndarray:
    """Class probabilities."""
    import torch

    with torch.no_grad():
        return torch.softmax(model(torch.as_tensor(x)), -1).numpy()


def gap_recovered(weak: float, w2s: float, ceiling: float) -> float:
    """PGR = (weak-to-strong - weak) / (strong ceiling - weak); nan where the ceiling does not beat the weak model."""
    return (w2s - weak) / (ceiling - weak) if ceiling > weak else float("nan")


@one_thread()
def run(name: str, seed: int, *, weak_epochs: int = 40, strong_epochs: int = 30, hidden: int = 256,
        aux_alpha: float = 0.5) -> dict[str, float]:
    """One seed of one task: the weak supervisor, the strong ceiling, and the student trained on the supervisor's
    soft labels of half B, naively and with the confidence loss. Accuracies on the test set, agreements with the
    weak supervisor's labels there, and PGR."""
    task = load_task(name, seed)
    y, a, b, test = task.y, task.a, task.b, task.test
    weak = train(weak_model(task, seed), task.weak_x[a], y[a], epochs=weak_epochs, seed=seed, lr=1e-2)
    soft = predict(weak, task.weak_x[b])
    weak_test = predict(weak, task.weak_x[test]).argmax(1)
    out = {"weak": float((weak_test == y[test]).mean()), "weak_label_accuracy": float((soft.argmax(1) == y[b]).mean())}
    ceiling = train(strong_model(task, seed, hidden), task.strong_x[b], y[b], epochs=strong_epochs, seed=seed)
    out["ceiling"] = float((predict(ceiling, task.strong_x[test]).argmax(1) == y[test]).mean())
    for key, alpha in (("w2s", 0.0), ("w2s_aux", aux_alpha)):
        student = train(strong_model(task, seed, hidden), task.strong_x[b], soft, epochs=strong_epochs, seed=seed,
                        aux_alpha=alpha)
        pred = predict(student, task.strong_x[test]).argmax(1)
        out[key] = float((pred == y[test]).mean())
        out[key + "_agreement"] = float((pred == weak_test).mean())
        out["pgr" if alpha == 0 else "pgr_aux"] = gap_recovered(out["weak"], out[key], out["ceiling"])
    return out
