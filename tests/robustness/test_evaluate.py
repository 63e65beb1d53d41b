"""Our PGD against torchattacks' on the same model and inputs: the same iterates without a random start, and the
same robust accuracy within the experiment's tolerance with one."""

from __future__ import annotations

import pytest
import torch

from alignlab.experiments.adversarial_examples import AdversarialExamplesConfig
from alignlab.robustness import evaluate
from alignlab.robustness.attacks import Attack, pgd, robust_accuracy

TOLERANCE = AdversarialExamplesConfig().tolerance


def test_the_library_runs_without_torchvision():
    import sys

    assert evaluate.library_version() == "3.5.1"
    assert "torchvision" not in sys.modules


def test_linf_iterates_equal_torchattacks(digits_model):
    model, x, y = digits_model
    ours = pgd(model, x, y, norm="linf", eps=0.1, steps=10, random_start=False)
    theirs = evaluate.library_pgd(model, x, y, norm="linf", eps=0.1, steps=10, random_start=False)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_l2_iterates_equal_torchattacks_per_example(digits_model):
    """One example at a time: torchattacks averages the loss over the batch before normalising each gradient with
    a 1e-10 guard, which shrinks the steps of confidently classified examples in a large batch; ours sums."""
    model, x, y = digits_model
    for i in range(0, 40):
        xi, yi = x[i:i + 1], y[i:i + 1]
        ours = pgd(model, xi, yi, norm="l2", eps=0.5, steps=10, random_start=False)
        theirs = evaluate.library_pgd(model, xi, yi, norm="l2", eps=0.5, steps=10, random_start=False)
        assert torch.allclose(ours, theirs, atol=1e-5), i


@pytest.mark.parametrize("norm,epsilons", [("linf", [0.05, 0.1, 0.15]), ("l2", [0.25, 0.5, 1.0])])
def test_robust_accuracy_agrees_within_the_tolerance(digits_model, norm, epsilons):
    model, x, y = digits_model
    ours = [robust_accuracy(model, x, y, Attack("pgd", norm, e, 10), torch.Generator().manual_seed(3))
            for e in epsilons]
    theirs = evaluate.cross_check(model, x, y, norm, epsilons, steps=10, seed=3)
    assert all(abs(a - b) <= TOLERANCE for a, b in zip(ours, theirs)), (ours, theirs)
    assert ours[0] > ours[-1] + 0.2  # the sweep spans a real fall, so agreement is not agreement at 0 or 1


def test_the_check_can_fail(digits_model):
    """A PGD with a tenth of the step size is a weaker attack: outside the tolerance of torchattacks' result."""
    model, x, y = digits_model
    weak = robust_accuracy(model, x, y, Attack("pgd", "linf", 0.1, 10, alpha=0.0025), torch.Generator().manual_seed(3))
    theirs = evaluate.cross_check(model, x, y, "linf", [0.1], steps=10, seed=3)[0]
    assert weak - theirs > TOLERANCE


def test_sweep_shapes_and_clean_point(digits_model):
    model, x, y = digits_model
    out = evaluate.sweep(model, x, y, "linf", [0.0, 0.1], steps=3, seed=0)
    assert out["eps"] == [0.0, 0.1] and len(out["pgd"]) == len(out["fgsm"]) == 2
    assert out["pgd"][0] == out["fgsm"][0] == robust_accuracy(model, x, y)
    assert out["pgd"][1] <= out["fgsm"][1] + 0.02
