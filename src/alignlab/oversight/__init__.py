"""Scalable oversight: preference learning, fooled and assisted raters, debate, amplification, weak-to-strong."""
