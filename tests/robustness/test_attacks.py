"""FGSM and PGD: budgets kept, exact on a linear model (where one signed or normalised step is optimal), PGD at
least as strong as FGSM, restarts never weaker."""

from __future__ import annotations

import pytest
import torch

from alignlab.core.errors import ConfigError
from alignlab.robustness.attacks import Attack, correct, pgd, project, random_delta, robust_accuracy


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.5)])
def test_pgd_stays_in_the_ball_and_the_box(digits_model, norm, eps):
    model, x, y = digits_model
    adv = pgd(model, x, y, norm=norm, eps=eps, steps=10, generator=torch.Generator().manual_seed(0))
    delta = (adv - x).flatten(1)
    size = delta.abs().max(1).values if norm == "linf" else delta.norm(dim=1)
    assert size.max() <= eps + 1e-5
    assert adv.min() >= 0 and adv.max() <= 1
    assert size.max() > 0.9 * eps  # it uses the budget: the boundary binds for some examples


def test_projection_and_random_start():
    g = torch.Generator().manual_seed(0)
    d = torch.randn(500, 1, 8, 8, generator=g)
    p = project(d, "l2", 0.5)
    norms = p.flatten(1).norm(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, 0.5), atol=1e-5)  # every draw was outside: onto the sphere
    assert torch.allclose(project(p, "l2", 0.5), p)  # idempotent
    small = 0.01 * d / d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    assert torch.allclose(project(small, "l2", 0.5), small)  # inside: unchanged
    assert project(d, "linf", 0.1).abs().max() <= 0.1
    r = random_delta(torch.zeros(4000, 1, 8, 8), "l2", 1.0, g).flatten(1).norm(dim=1)
    assert r.max() <= 1.0 + 1e-6
    assert abs(float(r.median()) - 0.5) < 0.03  # radius uniform in [0, eps]
    u = random_delta(torch.zeros(4000, 64), "linf", 0.2, g)
    assert u.abs().max() <= 0.2 and abs(float(u.mean())) < 0.01


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_exact_on_a_linear_model(norm):
    """Two classes, logits W x: the best perturbation in the ball lowers the margin by eps times the dual norm of
    w_y - w_other (L1 for L-infinity, L2 for L2), so an example falls iff its margin is below that. FGSM takes
    that step exactly and PGD cannot beat it (inputs kept away from 0 and 1, so the box never binds)."""
    g = torch.Generator().manual_seed(1)
    model = torch.nn.Linear(64, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.randn(2, 64, generator=g) * 0.3)
    x = 0.3 + 0.4 * torch.rand(2000, 64, generator=g)
    with torch.no_grad():
        logits = model(x)
    y = logits.argmax(-1)  # every example starts correct
    w = model.weight.detach()
    diff = w[y] - w[1 - y]
    margin = logits.gather(1, y[:, None])[:, 0] - logits.gather(1, (1 - y)[:, None])[:, 0]
    dual = diff.abs().sum(1) if norm == "linf" else diff.norm(dim=1)
    eps = float((margin / dual).median())  # the radius that breaks half of them
    assert eps < 0.3  # so no coordinate moves past the box
    expected = (margin > eps * dual).float().mean()
    fgsm = robust_accuracy(model, x, y, Attack("fgsm", norm, eps))
    strong = robust_accuracy(model, x, y, Attack("pgd", norm, eps, steps=20), torch.Generator().manual_seed(0))
    assert fgsm == pytest.approx(float(expected), abs=1e-3)
    assert strong >= float(expected) - 1e-3  # nothing in the ball beats the optimum
    # L-infinity: sign steps reach the optimal corner; L2: the random start's component across the optimal direction
    # shrinks by the projections but is not gone after 20 steps, so a few examples at the boundary survive
    assert strong <= float(expected) + (1e-3 if norm == "linf" else 0.03)


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.5)])
def test_pgd_breaks_the_standard_model_more_than_fgsm(digits_model, norm, eps):
    model, x, y = digits_model
    clean = robust_accuracy(model, x, y)
    assert clean > 0.9
    assert robust_accuracy(model, x, y, Attack("pgd", norm, 0.0)) == clean
    fgsm = robust_accuracy(model, x, y, Attack("fgsm", norm, eps))
    strong = robust_accuracy(model, x, y, Attack("pgd", norm, eps, steps=10), torch.Generator().manual_seed(0))
    assert strong < clean - 0.3
    assert strong <= fgsm


def test_restarts_are_never_weaker_and_seeded(digits_model):
    model, x, y = digits_model

    def run(restarts, seed=0):
        return correct(model, x, y, Attack("pgd", "l2", 0.5, steps=5, restarts=restarts),
                       torch.Generator().manual_seed(seed))

    one, three = run(1), run(3)
    assert not (three & ~one).any()  # an example broken by the first start stays broken
    assert torch.equal(run(1), one)  # same seed, same starts
    assert model.training is False


@pytest.mark.parametrize("kwargs", [dict(norm="l1"), dict(method="cw"), dict(eps=-0.1), dict(steps=0),
                                    dict(restarts=0)])
def test_bad_attack_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        Attack(**kwargs)
