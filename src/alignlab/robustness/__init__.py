"""Adversarial examples and adversarial training on small offline classifiers."""
