"""One torch intra-op thread for small networks (debate, amplification, weak-to-strong, adversarial examples)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the count (usable as a decorator): small networks are far too
    small to gain from threads, and on a busy machine the threads' synchronisation costs many times the arithmetic."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
