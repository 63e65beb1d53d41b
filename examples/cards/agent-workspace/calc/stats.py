"""Small statistics helpers."""


def median(xs):
    """The median of a non-empty list of numbers."""
    xs = sorted(xs)
    return xs[len(xs) // 2]
