"""Information-flow labels: data from untrusted tools carries a taint that follows it into later calls.

Two ways a label travels (after FIDES, Costa et al. 2025, arXiv:2505.23643, and CaMeL,
Debenedetti et al. 2025, arXiv:2503.18813, which label values by provenance): explicitly,
as a `Tainted` string returned by the guard; and by content, for agents that copy text
into new strings: every "atom" (a token of at least `min_atom` characters: an address, an
IBAN, a URL, an identifier) first seen in an untrusted output taints any later argument
that contains it; a short argument (an id like '13') is tainted when it equals a token of an
untrusted output as a whole. Trusted text (the user's own request, outputs of trusted tools seen
*before* the untrusted one) clears an atom, so data cannot be laundered by writing it
somewhere trusted and reading it back.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

ATOM_RE = re.compile(r"[^\s\"'<>()\[\]{},;|`]+")
STRIP = ".:!?*_-"


class Tainted(str):
    """A string that carries provenance labels (e.g. `untrusted:read_inbox`)."""

    labels: frozenset[str]

    def __new__(cls, value: str, labels: Iterable[str]) -> "Tainted":
        obj = super().__new__(cls, value)
        obj.labels = frozenset(labels)
        return obj

    def __reduce__(self):  # keep labels through copy/deepcopy/pickle
        return (Tainted, (str(self), tuple(self.labels)))


def strings_in(value: Any) -> Iterable[str]:
    """Every string inside a nested value (dict values and keys, list items, objects' __dict__)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings_in(k)
            yield from strings_in(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from strings_in(v)
    elif hasattr(value, "model_dump"):  # pydantic objects (AgentDojo returns them)
        yield from strings_in(value.model_dump())
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        yield from strings_in(vars(value))
    elif value is not None and not isinstance(value, (bool, int, float)):
        yield str(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield repr(value)


def atoms(text: str, min_atom: int) -> set[str]:
    """Tokens of at least `min_atom` characters; shorter tokens are kept as `#tok` (matched only as whole values)."""
    out = set()
    for tok in ATOM_RE.findall(text):
        tok = tok.strip(STRIP).casefold()
        if len(tok) >= min_atom:
            out.add(tok)
        elif tok:
            out.add("#" + tok)
    return out


class TaintTracker:
    """Remembers which atoms came from which untrusted sources, and labels argument values."""

    def __init__(self, min_atom: int = 6, trusted_text: Iterable[str] = ()):
        self.min_atom = min_atom
        self._trusted: set[str] = set()
        self._untrusted: dict[str, set[str]] = {}
        for text in trusted_text:
            self.add_trusted(text)

    def add_trusted(self, value: Any) -> None:
        """Trusted data (the user's request; outputs of trusted tools). Never clears an atom already tainted."""
        for s in strings_in(value):
            for a in atoms(s, self.min_atom):
                # short tokens are ambiguous ('13' in a date is not a file id): they never vouch for a value
                if a not in self._untrusted and not a.startswith("#"):
                    self._trusted.add(a)

    def add_untrusted(self, value: Any, label: str) -> None:
        for s in strings_in(value):
            for a in atoms(s, self.min_atom):
                if a not in self._trusted:
                    self._untrusted.setdefault(a, set()).add(label)

    def labels_of(self, value: Any) -> frozenset[str]:
        """The taint labels of a (nested) argument value: explicit `Tainted` labels plus content matches."""
        labels: set[str] = set()
        self._collect(value, labels)
        return frozenset(labels)

    def _collect(self, value: Any, labels: set[str]) -> None:
        if isinstance(value, Tainted):
            labels |= value.labels
        if isinstance(value, dict):
            for v in value.values():
                self._collect(v, labels)
            return
        if isinstance(value, (list, tuple, set, frozenset)):
            for v in value:
                self._collect(v, labels)
            return
        if not self._untrusted:
            return
        for s in strings_in(value):
            if isinstance(value, str) and 0 < len(s.strip(STRIP)) < self.min_atom:
                # a short whole value (an id like '13', a channel name): tainted if untrusted text has that token
                src = self._untrusted.get("#" + s.strip(STRIP).casefold())
                if src:
                    labels |= src
                continue
            for a in atoms(s, self.min_atom):
                src = self._untrusted.get(a) if not a.startswith("#") else None
                if src:
                    labels |= src

    @property
    def size(self) -> tuple[int, int]:
        return len(self._trusted), len(self._untrusted)
