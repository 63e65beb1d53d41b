"""Image classification data for the robustness experiments: sklearn's 8x8 digits (UCI optdigits; Alpaydin and
Kaynak 1998) or a user's own tensors (a .pt or .npz file holding `x` and `y`), checked and split, as
(N, C, H, W) float tensors in [0, 1]."""

from __future__ import annotations

import dataclasses
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.core.errors import ConfigError
from alignlab.core.seeding import rng

DIGITS = "digits"
SUFFIXES = (".pt", ".npz")
FORMAT = ("a .pt file (a dict saved with torch.save) or a .npz file (numpy.savez) holding `x` (n examples: (n, d), "
          "(n, h, w) or (n, c, h, w), floats in [0, 1]) and `y` (n integer labels 0..k-1), optionally `x_test` and "
          "`y_test` (else 30% of each class is held out)")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Train and test images (float32, (n, C, H, W), in [0, 1]) and int64 labels, with what identifies them."""

    name: str
    digest: str
    """sha256 of the file's bytes (the split is a function of them), or the built-in set's name."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def tensors(self) -> tuple[Any, Any, Any, Any]:
        import torch

        return tuple(torch.as_tensor(a) for a in (self.x_train, self.y_train, self.x_test, self.y_test))


def _as_images(x: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, 1, 1, d); (n, h, w) -> (n, 1, h, w); (n, c, h, w) unchanged."""
    if x.ndim == 2:
        return x[:, None, None, :]
    if x.ndim == 3:
        return x[:, None]
    return x


def stratified_split(y: np.ndarray, test_fraction: float = 0.3, seed: int = 0) -> np.ndarray:
    """Boolean test mask holding out `test_fraction` of each class (at least one where a class has two or more)."""
    g = rng(seed, "tensor-split")
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = int(round(test_fraction * len(idx)))
        k = min(max(k, 1 if len(idx) > 1 else 0), len(idx) - 1)
        test[g.choice(idx, size=k, replace=False)] = True
    return test


def digits() -> Dataset:
    """sklearn's digits through `alignlab.vision.digits.load` (its fixed split), as (n, 1, 8, 8)."""
    from alignlab.vision import digits as d

    s = d.load()
    return Dataset(DIGITS, DIGITS, _as_images(s.x_train), s.y_train, _as_images(s.x_test), s.y_test, d.N_CLASSES)


def _read(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: np.asarray(z[k]) for k in z.files}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"data file {path}: not a readable .npz ({exc}); expected {FORMAT}") from None
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged or pickled-object file
        raise ConfigError(f"data file {path}: not a readable tensor file ({type(exc).__name__}); expected {FORMAT}"
                          ) from None
    if not isinstance(obj, dict):
        raise ConfigError(f"data file {path}: holds a {type(obj).__name__}, not a dict; expected {FORMAT}")
    out = {}
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            out[str(k)] = v.detach().cpu().numpy()
        elif isinstance(v, np.ndarray):
            out[str(k)] = v
    return out


def _check(path: Path, x: np.ndarray, y: np.ndarray, which: str) -> tuple[np.ndarray, np.ndarray]:
    where = f"data file {path}: `{which[0]}`"
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise ConfigError(f"{where} has dtype {x.dtype}; expected numbers. Expected {FORMAT}")
    if x.ndim not in (2, 3, 4) or len(x) == 0:
        raise ConfigError(f"{where} has shape {x.shape}; expected (n, d), (n, h, w) or (n, c, h, w) with n >= 1")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ConfigError(f"{where} holds NaN or infinite values; expected floats in [0, 1]")
    if x.min() < 0 or x.max() > 1:
        raise ConfigError(f"{where} ranges over [{x.min():g}, {x.max():g}]; expected inputs scaled to [0, 1] "
                          "(divide by the largest pixel value, e.g. 255)")
    if y.ndim != 1 or len(y) != len(x):
        raise ConfigError(f"data file {path}: `{which[1]}` has shape {y.shape}; expected ({len(x)},), one label per "
                          f"row of `{which[0]}`")
    if not (np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)))):
        raise ConfigError(f"data file {path}: `{which[1]}` has dtype {y.dtype}; expected integer class labels")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ConfigError(f"data file {path}: `{which[1]}` holds negative labels; expected labels 0..k-1")
    return _as_images(x), y


def load_file(path: str | Path) -> Dataset:
    """A user's tensors, checked: one clear ConfigError naming what is wrong and the expected format."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ConfigError(f"data {str(path)!r}: expected {DIGITS!r} or {FORMAT}")
    if not path.is_file():
        raise ConfigError(f"data file {path} does not exist (or is not a file); expected {DIGITS!r} or {FORMAT}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    arrays = _read(path)
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise ConfigError(f"data file {path}: missing {', '.join(missing)} (has {', '.join(sorted(arrays)) or 'none'});"
                          f" expected {FORMAT}")
    x, y = _check(path, arrays["x"], arrays["y"], ("x", "y"))
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise ConfigError(f"data file {path}: `x_test` and `y_test` go together (found only one)")
    if "x_test" in arrays:
        x_test, y_test = _check(path, arrays["x_test"], arrays["y_test"], ("x_test", "y_test"))
        if x_test.shape[1:] != x.shape[1:]:
            raise ConfigError(f"data file {path}: `x_test` examples have shape {x_test.shape[1:]}, `x` examples "
                              f"{x.shape[1:]}; they must match")
    else:
        test = stratified_split(y)
        x, y, x_test, y_test = x[~test], y[~test], x[test], y[test]
    if len(x_test) == 0:
        raise ConfigError(f"data file {path}: no test examples (every class has a single example); give more "
                          "examples or `x_test` and `y_test`")
    n_classes = int(max(y.max(), y_test.max())) + 1
    if len(np.unique(y)) < 2:
        raise ConfigError(f"data file {path}: the training labels hold {len(np.unique(y))} class; need at least 2")
    return Dataset(path.name, digest, x, y, x_test, y_test, n_classes)


@lru_cache(maxsize=1)
def _digits() -> Dataset:
    return digits()


def load(source: str) -> Dataset:
    """`digits` (the built-in set) or a path to a .pt / .npz file (see FORMAT), read anew each call."""
    return _digits() if source == DIGITS else load_file(source)
