"""The public repository stands alone: no references to files outside it (a sibling `shared`
folder, local reference notes, machine paths) and no internal tracker numbers.
Cite the paper or public source instead, or docs/benchmarks.md for a measurement here.

The patterns are built from pieces so that this file does not match itself."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ["src", "tests", "docs", "benchmarks", "README.md"]
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}

_DOTS, _SHARED, _REF, _WORK, _ISSUE = "..", "shared", "reference", "work", "issue"
PATTERNS = {
    "sibling shared folder": re.compile(re.escape(_DOTS + "/" + _SHARED)),
    "local reference notes": re.compile(re.escape(_SHARED + "/" + _REF)),
    "machine path": re.compile(re.escape("/" + _WORK + "/")),
    "tracker number": re.compile(r"\b" + _ISSUE + r"\s+#?\d", re.IGNORECASE),
}


def _files() -> list[Path]:
    out = []
    for name in SCANNED:
        p = ROOT / name
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(f for f in sorted(p.rglob("*"))
                       if f.is_file() and not SKIP_DIRS.intersection(f.relative_to(ROOT).parts))
    return out


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", errors="replace")


def test_no_references_outside_the_repository():
    hits = []
    for path in _files():
        text = _text(path)
        if text is None:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            for what, pattern in PATTERNS.items():
                if pattern.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{lineno}: {what}: {line.strip()[:160]}")
    assert not hits, "references that a clone of the repository cannot follow:\n" + "\n".join(hits)


def test_the_patterns_catch_what_they_should():
    samples = {"sibling shared folder": "see " + _DOTS + "/" + _SHARED + "/DESIGN.md",
               "local reference notes": _SHARED + "/" + _REF + "/language-models.md",
               "machine path": "/" + _WORK + "/main/src",
               "tracker number": "(" + _ISSUE.capitalize() + " 6, item 7) and " + _ISSUE + " #12"}
    for what, sample in samples.items():
        assert PATTERNS[what].search(sample), what
    assert not PATTERNS["tracker number"].search("the public issue trackers of NeMo Guardrails")
    assert not PATTERNS["machine path"].search("a shared 2-core box; network/workspace")
