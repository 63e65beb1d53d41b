"""Training recipes: without an adversary the shared digits trainer exactly; PGD adversarial training (through the
registered technique) buys robust accuracy; settings checked."""

from __future__ import annotations

import pytest
import torch

from alignlab.core.errors import ConfigError
from alignlab.core.technique import make_technique
from alignlab.robustness import data
from alignlab.robustness.attacks import Attack, robust_accuracy
from alignlab.robustness.training import Recipe, train
from alignlab.vision import digits


def test_standard_recipe_is_the_digits_trainer():
    x_train, y_train, _, _ = data.load("digits").tensors()
    ours = train(digits.mlp(seed=3), x_train[:300], y_train[:300], Recipe(epochs=2), seed=3)
    theirs = digits.fit(digits.mlp(seed=3), x_train[:300], y_train[:300], epochs=2, seed=3)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)


def test_the_technique_sets_the_inner_maximisation():
    tech = make_technique("adversarial-training(norm=l2, eps=0.5, steps=3, clean_weight=0.5)")
    assert tech.slot == "classifier-training"
    recipe = tech.apply(Recipe(epochs=4))
    assert recipe.adversary == Attack("pgd", "l2", 0.5, 3) and recipe.clean_weight == 0.5 and recipe.epochs == 4
    with pytest.raises(ConfigError, match="warmup_epochs"):
        make_technique("adversarial-training(warmup_epochs=9)").apply(Recipe(epochs=4))


@pytest.mark.parametrize("spec", ["adversarial-training(eps=0)", "adversarial-training(norm=l1)",
                                  "adversarial-training(clean_weight=1)", "adversarial-training(steps=0)"])
def test_bad_technique_settings_are_refused(spec):
    with pytest.raises(ConfigError):
        make_technique(spec)


def test_adversarial_training_buys_robust_accuracy():
    x_train, y_train, x_test, y_test = data.load("digits").tensors()
    recipe = Recipe(epochs=8)
    standard = train(digits.mlp(seed=0), x_train, y_train, recipe, seed=0)
    robust = train(digits.mlp(seed=0), x_train, y_train,
                   make_technique("adversarial-training(steps=3, warmup_epochs=1)").apply(recipe), seed=0)
    attack = Attack("pgd", "linf", 0.1, 10)
    before = robust_accuracy(standard, x_test, y_test, attack, torch.Generator().manual_seed(0))
    after = robust_accuracy(robust, x_test, y_test, attack, torch.Generator().manual_seed(0))
    assert after > before + 0.25, (before, after)
    assert robust_accuracy(robust, x_test, y_test) > 0.9
    assert not robust.training


def test_bad_recipes_are_refused():
    for kwargs in (dict(epochs=0), dict(lr=0), dict(clean_weight=1.0), dict(epochs=2, warmup_epochs=3)):
        with pytest.raises(ConfigError):
            Recipe(**kwargs)
