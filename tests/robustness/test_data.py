"""A user's tensors (.pt / .npz): read, checked, split; every malformed file refused with one clear message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.core.errors import ConfigError
from alignlab.robustness import data


def _images(n=60, k=3, seed=0):
    g = np.random.default_rng(seed)
    return g.random((n, 6, 6)).astype(np.float32), np.arange(n) % k


def test_digits_are_images_in_the_unit_box():
    ds = data.load("digits")
    assert ds.shape == (1, 8, 8) and ds.n_classes == 10
    assert len(ds.x_train) + len(ds.x_test) == 1797
    assert 0 <= ds.x_train.min() and ds.x_train.max() <= 1


def test_npz_is_read_split_and_identified(tmp_path):
    x, y = _images()
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=y)
    ds = data.load(str(path))
    assert ds.shape == (1, 6, 6) and ds.n_classes == 3
    assert len(ds.x_test) == 18 and sorted(np.bincount(ds.y_test)) == [6, 6, 6]  # 30% of each class held out
    assert ds.digest == data.load(str(path)).digest  # same bytes, same split
    np.savez(path, x=x[::-1].copy(), y=y[::-1].copy())
    assert data.load(str(path)).digest != ds.digest


def test_pt_with_its_own_test_set(tmp_path):
    path = tmp_path / "mine.pt"
    x, y = _images(40)
    torch.save({"x": torch.tensor(x.reshape(40, 36)), "y": torch.tensor(y),
                "x_test": torch.tensor(x[:10].reshape(10, 36)), "y_test": torch.tensor(y[:10])}, path)
    ds = data.load(str(path))
    assert ds.shape == (1, 1, 36) and len(ds.x_train) == 40 and len(ds.x_test) == 10


@pytest.mark.parametrize("case,message", [
    ("suffix", "expected 'digits' or a .pt file"),
    ("missing", "does not exist"),
    ("no-y", "missing y"),
    ("range", "expected inputs scaled to [0, 1]"),
    ("nan", "NaN"),
    ("length", "one label per row"),
    ("float-labels", "integer class labels"),
    ("negative", "negative labels"),
    ("one-class", "need at least 2"),
    ("half-test", "go together"),
    ("test-shape", "they must match"),
    ("pickle", "not a readable tensor file"),
    ("not-dict", "not a dict"),
])
def test_bad_files_are_refused_clearly(tmp_path, case, message):
    x, y = _images()
    path = tmp_path / ("d.pt" if case in ("pickle", "not-dict") else "d.npz")
    arrays = {"x": x, "y": y}
    if case == "suffix":
        path = tmp_path / "d.csv"
        path.write_text("x,y\n")
    elif case == "no-y":
        arrays.pop("y")
    elif case == "range":
        arrays["x"] = x * 255
    elif case == "nan":
        arrays["x"] = np.where(x > 0.5, np.nan, x)
    elif case == "length":
        arrays["y"] = y[:-1]
    elif case == "float-labels":
        arrays["y"] = y + 0.5
    elif case == "negative":
        arrays["y"] = y - 1
    elif case == "one-class":
        arrays["y"] = np.zeros_like(y)
    elif case == "half-test":
        arrays["x_test"] = x[:5]
    elif case == "test-shape":
        arrays.update(x_test=x[:5, :3], y_test=y[:5])
    if case == "pickle":
        torch.save({"x": torch.tensor(x), "y": torch.tensor(y), "extra": object()}, path)
    elif case == "not-dict":
        torch.save(torch.tensor(x), path)
    elif case not in ("suffix", "missing"):
        np.savez(path, **arrays)
    with pytest.raises(ConfigError) as err:
        data.load(str(path))
    assert message in str(err.value) and "\n" not in str(err.value)
