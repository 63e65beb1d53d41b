"""Scalable oversight: reward learning from preferences, fooled and assisted raters, debate, amplification and weak-to-strong supervision."""
