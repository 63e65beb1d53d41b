"""Robust accuracy against epsilon for a trained classifier (FGSM and PGD, Goodfellow et al. 2015,
arXiv:1412.6572; Madry et al. 2018, arXiv:1706.06083), and the same PGD run by torchattacks (Kim 2020,
arXiv:2010.01950) on the same model and inputs, as a cross-check of ours."""

from __future__ import annotations

from typing import Any

from alignlab.robustness.attacks import Attack, default_alpha, robust_accuracy

LIBRARY = "torchattacks"


def sweep(model: Any, x: Any, y: Any, norm: str, epsilons: list[float], *, steps: int, restarts: int = 1,
          seed: int = 0) -> dict[str, list[float]]:
    """{"eps": epsilons, "pgd": robust accuracy under PGD at each, "fgsm": under FGSM at each}. Each eps gets its
    own generator seeded by `seed`, so two models attacked with one seed get the same random starts."""
    import torch

    out: dict[str, list[float]] = {"eps": list(epsilons), "pgd": [], "fgsm": []}
    for eps in epsilons:
        g = torch.Generator().manual_seed(seed)
        out["pgd"].append(robust_accuracy(model, x, y, Attack("pgd", norm, eps, steps, restarts=restarts), g))
        out["fgsm"].append(robust_accuracy(model, x, y, Attack("fgsm", norm, eps)))
    return out


def library_version() -> str | None:
    """torchattacks' version, or None where it is not installed (it is installed with --no-deps: its PGD needs
    only torch; requirements-nodeps.txt)."""
    try:
        import torchattacks
    except ImportError:
        return None
    return str(torchattacks.__version__)


def library_pgd(model: Any, x: Any, y: Any, *, norm: str, eps: float, steps: int, alpha: float = 0.0,
                random_start: bool = True, seed: int = 0) -> Any:
    """torchattacks' PGD (L-infinity) or PGDL2 on (N, C, H, W) inputs; its random start comes from torch's global
    generator, seeded here inside a forked RNG state so the caller's stream is untouched."""
    import torch
    import torchattacks

    alpha = alpha or default_alpha(eps, steps)
    cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    attack = cls(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return attack(x, y)


def library_accuracy(model: Any, x: Any, y: Any, *, norm: str, eps: float, steps: int, seed: int = 0) -> float:
    """Robust accuracy under torchattacks' PGD with a random start (clean accuracy at eps 0)."""
    import torch

    was_training = model.training
    model.eval()
    try:
        adv = x if eps == 0 else library_pgd(model, x, y, norm=norm, eps=eps, steps=steps, seed=seed)
        with torch.no_grad():
            return float((model(adv).argmax(-1) == y).float().mean())
    finally:
        model.train(was_training)


def cross_check(model: Any, x: Any, y: Any, norm: str, epsilons: list[float], *, steps: int,
                seed: int = 0) -> list[float] | None:
    """torchattacks' robust accuracy at each eps (one random start, as ours with restarts=1), or None where the
    library is missing."""
    if library_version() is None:
        return None
    return [library_accuracy(model, x, y, norm=norm, eps=eps, steps=steps, seed=seed) for eps in epsilons]
