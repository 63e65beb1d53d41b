"""sklearn's built-in 8x8 handwritten digits (UCI optdigits; Alpaydin and Kaynak 1998), offline, as torch tensors
with a fixed stratified train/test split, and a small classifier trainer shared by the debate, weak-to-strong and
adversarial-example experiments."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np

from alignlab.core.device import model_device
from alignlab.core.seeding import rng

SIDE = 8
N_PIXELS = SIDE * SIDE
N_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class Split:
    """Images scaled to [0, 1] (float32, shape (n, 8, 8)) and integer labels, for training and for testing."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@lru_cache(maxsize=4)
def load(test_fraction: float = 0.3, seed: int = 0) -> Split:
    """The 1,797 digits split stratified by class: the same split for the same (test_fraction, seed)."""
    from sklearn.datasets import load_digits  # sklearn ships the data in its wheel: no download

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    g = rng(seed, "digits-split")
    test = np.zeros(len(y), dtype=bool)
    for c in range(N_CLASSES):
        idx = np.flatnonzero(y == c)
        test[g.choice(idx, size=int(round(test_fraction * len(idx))), replace=False)] = True
    for a in (x, y, test):
        a.setflags(write=False)
    return Split(x[~test], y[~test], x[test], y[test])


def mlp(hidden: int = 64, in_features: int = N_PIXELS, n_classes: int = N_CLASSES, seed: int = 0):
    """A small fully connected classifier on flattened inputs (torch), initialised from `seed`."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_classes))


def fit(model, x: np.ndarray, y: np.ndarray, *, epochs: int = 30, lr: float = 3e-3, batch: int = 64, seed: int = 0,
        weight_decay: float = 0.0):
    """Train `model` with Adam and cross-entropy on (x, y); returns the model in eval mode. Runs where the model's
    parameters are (move it with `model.to(core.device.select())` for a GPU); the batch order is the same anywhere."""
    import torch

    g = torch.Generator().manual_seed(seed)
    where = model_device(model)
    xt, yt = torch.as_tensor(x).to(where), torch.as_tensor(y).to(where)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=g).to(where).split(batch):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """Share of (x, y) the model labels correctly (on the model's device)."""
    import torch

    where = model_device(model)
    with torch.no_grad():
        return float((model(torch.as_tensor(x).to(where)).argmax(-1) == torch.as_tensor(y).to(where)).float().mean())


def cnn(channels: int = 1, n_classes: int = N_CLASSES, width: int = 16, seed: int = 0):
    """A small convolutional classifier on (n, channels, h, w) images (two 3x3 convolutions, the second strided,
    pooled to 2x2, one linear layer), initialised from `seed`."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(8 * width, n_classes))
