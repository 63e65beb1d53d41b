"""Constitutions for Constitutional AI (Bai et al. 2022, "Constitutional AI: Harmlessness from AI Feedback",
arXiv:2212.08073): named principles, each a critique request and a revision request (SL-CAI), comparison
principles for AI feedback (RL-CAI), and few-shot critique/revision dialogues.

Two file formats:

- alignlab's TOML (`constitutions/*.toml`, the bundled `default`, `empty` and `bad`): top-level `name` and
  `description`, then `[[principles]]` (name, critique, revision), `[[comparisons]]` (name, text) and
  `[[examples]]` (prompt, response, principle, critique, revision: a worked critique/revision shown before each
  request, as the paper's few-shot prompts). Validated on load: the first problem is one `ConstitutionError`
  naming the file, the line and the field (tomllib gives no positions, so the line is found by scanning the
  text for the table and key).
- the JSON of Hugging Face's llm-swarm Constitutional AI example (`constitution_anthropic.json`, MIT):
  `{"constitutions": [{"critic": ..., "revision": ...}], "system_chat": [[{"role", "content"}, ...], ...]}`;
  read unchanged (its principles are numbered, its few-shot dialogues used as they are; it has no comparison
  principles, so AI feedback asks the generic question, `GENERIC_COMPARISON`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from alignlab.core.errors import UserError

BUNDLED_DIR = Path(__file__).parent / "constitutions"
GENERIC_COMPARISON = "Which of these assistant responses is better?"
"""The feedback question when a constitution has no comparison principles (the `empty` one, llm-swarm files)."""
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
ROLES = ("system", "user", "assistant")


class ConstitutionError(UserError):
    """A constitution file that cannot be used (one line: file:line: field: what is wrong)."""


@dataclasses.dataclass(frozen=True)
class Principle:
    name: str
    critique: str
    """The critique request: asks the model to find what is wrong with its last response."""
    revision: str
    """The revision request: asks the model to rewrite its response accordingly."""


@dataclasses.dataclass(frozen=True)
class Comparison:
    name: str
    text: str
    """A multiple-choice question put to the feedback model about two responses, e.g. 'Which is less harmful?'."""


@dataclasses.dataclass(frozen=True)
class Constitution:
    name: str
    description: str
    principles: tuple[Principle, ...]
    comparisons: tuple[Comparison, ...]
    examples: tuple[tuple[dict[str, str], ...], ...]
    """Few-shot dialogues (prompt, response, critique request, critique, revision request, revision)."""
    source: str
    """Where it was read from (a bundled name or a file path)."""
    digest: str
    """sha256 of the file's bytes (first 16 hex digits): cached training is keyed by it."""

    @property
    def questions(self) -> tuple[str, ...]:
        """The feedback questions: each comparison principle's text, or the generic question when there are none."""
        return tuple(c.text for c in self.comparisons) or (GENERIC_COMPARISON,)

    def summary(self) -> str:
        return (f"{self.name}: {len(self.principles)} principles, {len(self.comparisons)} comparison principles, "
                f"{len(self.examples)} few-shot examples ({self.source}, sha256 {self.digest})")


def bundled_names() -> list[str]:
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.toml"))


def load(name_or_path: str | Path) -> Constitution:
    """A bundled constitution by name (`default`, `empty`, `bad`) or a file: `.toml` (alignlab's format) or
    `.json` (llm-swarm's). Raises ConstitutionError naming the file, line and field."""
    text = str(name_or_path)
    if text in bundled_names():
        path = BUNDLED_DIR / f"{text}.toml"
        return _load_file(path, f"bundled:{text}")
    path = Path(text).expanduser()
    if not path.suffix:
        raise ConstitutionError(f"unknown constitution {text!r}; valid: {', '.join(bundled_names())}, or a .toml "
                                "(alignlab) or .json (llm-swarm) file")
    if not path.is_file():
        raise ConstitutionError(f"{path}: no such constitution file; bundled: {', '.join(bundled_names())}")
    return _load_file(path, str(path))


def _load_file(path: Path, source: str) -> Constitution:
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:16]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConstitutionError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if path.suffix == ".json":
        return parse_llm_swarm(text, path, source, digest)
    if path.suffix != ".toml":
        raise ConstitutionError(f"{path}: unknown format {path.suffix!r}; valid: .toml (alignlab), .json (llm-swarm)")
    return parse_toml(text, path, source, digest)


# -- alignlab's TOML ------------------------------------------------------------------------------------

_TABLES = {"principles": ("name", "critique", "revision"), "comparisons": ("name", "text"),
           "examples": ("prompt", "response", "principle", "critique", "revision")}
_TOP = ("name", "description")


def _line_of(text: str, table: str | None, index: int, key: str | None) -> int:
    """The 1-based line of `key` in the `index`-th `[[table]]` (or at top level when table is None); the table's
    header line if the key is absent there; 1 if nothing is found."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[")
    start, end = 0, len(lines)
    if table is not None:
        starts = [i for i, ln in enumerate(lines) if re.match(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]", ln)]
        if index >= len(starts):
            return 1
        start = starts[index]
        end = next((i for i in range(start + 1, len(lines)) if header.match(lines[i])), len(lines))
    else:
        end = next((i for i, ln in enumerate(lines) if header.match(ln)), len(lines))
    if key is not None:
        pat = re.compile(rf"^\s*(\"{re.escape(key)}\"|'{re.escape(key)}'|{re.escape(key)})\s*=")
        for i in range(start, end):
            if pat.match(lines[i]):
                return i + 1
    return start + 1


class _Checker:
    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text

    def fail(self, table: str | None, index: int, key: str | None, msg: str) -> None:
        line = _line_of(self.text, table, index, key)
        field = (f"{table}[{index + 1}]" if table else "") + (f".{key}" if table and key else key or "")
        raise ConstitutionError(f"{self.path}:{line}: {field or 'file'}: {msg}")

    def string(self, table: str | None, index: int, key: str, value: Any, name: bool = False) -> str:
        if not isinstance(value, str):
            self.fail(table, index, key, f"must be a string, got {type(value).__name__}")
        if not value.strip():
            self.fail(table, index, key, "must not be empty")
        if name and not NAME_RE.match(value):
            self.fail(table, index, key, f"{value!r} is not a name (lower-case letters, digits and '-')")
        return value.strip()


def parse_toml(text: str, path: Path | str = "<inline>", source: str = "<inline>", digest: str = "") -> Constitution:
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{m.group(1)}: column {m.group(2)}" if m else "1"
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConstitutionError(f"{path}:{where}: not valid TOML: {msg}") from None
    v = _Checker(path, text)
    for key in data:
        if key not in _TOP and key not in _TABLES:
            v.fail(None, 0, key, f"unknown key; valid: {', '.join(_TOP + tuple(_TABLES))}")
    for key in _TOP:
        if key not in data:
            v.fail(None, 0, None, f"missing top-level key {key!r} (valid: {', '.join(_TOP + tuple(_TABLES))})")
    name = v.string(None, 0, "name", data["name"], name=True)
    description = v.string(None, 0, "description", data["description"])
    rows: dict[str, list[dict[str, str]]] = {}
    for table, keys in _TABLES.items():
        items = data.get(table, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            v.fail(None, 0, table, f"must be an array of tables (double brackets around {table})")
        rows[table] = []
        for i, item in enumerate(items):
            for key in item:
                if key not in keys:
                    v.fail(table, i, key, f"unknown key; valid: {', '.join(keys)}")
            for key in keys:
                if key not in item:
                    v.fail(table, i, key, f"missing (each {table} table needs {', '.join(keys)})")
            rows[table].append({k: v.string(table, i, k, item[k], name=(k in ("name", "principle")))
                                for k in keys})
    for table in ("principles", "comparisons"):
        seen: set[str] = set()
        for i, row in enumerate(rows[table]):
            if row["name"] in seen:
                v.fail(table, i, "name", f"duplicate name {row['name']!r}")
            seen.add(row["name"])
    principles = tuple(Principle(r["name"], r["critique"], r["revision"]) for r in rows["principles"])
    by_name = {p.name: p for p in principles}
    examples = []
    for i, row in enumerate(rows["examples"]):
        p = by_name.get(row["principle"])
        if p is None:
            v.fail("examples", i, "principle", f"{row['principle']!r} is not a principle of this file; valid: "
                                               f"{', '.join(by_name) or '(none: add [[principles]] first)'}")
        examples.append(example_dialogue(row["prompt"], row["response"], p, row["critique"], row["revision"]))
    return Constitution(name, description, principles,
                        tuple(Comparison(r["name"], r["text"]) for r in rows["comparisons"]), tuple(examples),
                        source, digest or hashlib.sha256(text.encode()).hexdigest()[:16])


def critique_turn(principle: Principle) -> str:
    return f"CritiqueRequest: {principle.critique}"


def revision_turn(principle: Principle) -> str:
    return f"RevisionRequest: {principle.revision}"


def example_dialogue(prompt: str, response: str, principle: Principle, critique: str,
                     revision: str) -> tuple[dict[str, str], ...]:
    """One few-shot dialogue in the paper's layout (Bai et al. 2022, sec. 3.1), as chat turns."""
    return ({"role": "user", "content": prompt}, {"role": "assistant", "content": response},
            {"role": "user", "content": critique_turn(principle)},
            {"role": "assistant", "content": f"Critique: {critique}"},
            {"role": "user", "content": revision_turn(principle)},
            {"role": "assistant", "content": f"Revision: {revision}"})


# -- llm-swarm's JSON -----------------------------------------------------------------------------------

def _json_line(text: str, needle: str, nth: int = 0) -> int:
    """The 1-based line of the `nth` occurrence of `needle` in `text` (1 if absent)."""
    pos = -1
    for _ in range(nth + 1):
        pos = text.find(needle, pos + 1)
        if pos < 0:
            return 1
    return text.count("\n", 0, pos) + 1


def parse_llm_swarm(text: str, path: Path | str = "<inline>", source: str = "<inline>",
                    digest: str = "") -> Constitution:
    """The llm-swarm example's `constitution_anthropic.json` layout, read unchanged."""
    path = Path(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConstitutionError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict) or "constitutions" not in data:
        raise ConstitutionError(f"{path}:1: constitutions: missing; an llm-swarm constitution is "
                                '{"constitutions": [{"critic": ..., "revision": ...}], "system_chat": [[...]]}')
    items = data["constitutions"]
    line = _json_line(text, '"constitutions"')
    if not isinstance(items, list) or not items:
        raise ConstitutionError(f"{path}:{line}: constitutions: must be a non-empty list of "
                                '{"critic": ..., "revision": ...}')
    principles = []
    for i, item in enumerate(items):
        for key in ("critic", "revision"):
            value = item.get(key) if isinstance(item, dict) else None
            if not isinstance(value, str) or not value.strip():
                at = _json_line(text, f'"{key}"', i) if isinstance(item, dict) and key in item else line
                raise ConstitutionError(f"{path}:{at}: constitutions[{i + 1}].{key}: must be a non-empty string")
        principles.append(Principle(f"principle-{i + 1}", item["critic"].strip(), item["revision"].strip()))
    chats = data.get("system_chat", [])
    sline = _json_line(text, '"system_chat"')
    if not isinstance(chats, list):
        raise ConstitutionError(f"{path}:{sline}: system_chat: must be a list of dialogues")
    examples = []
    for i, dialogue in enumerate(chats):
        if not isinstance(dialogue, list) or not dialogue:
            raise ConstitutionError(f"{path}:{sline}: system_chat[{i + 1}]: must be a non-empty list of "
                                    '{"role": ..., "content": ...}')
        for j, m in enumerate(dialogue):
            if (not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str)):
                raise ConstitutionError(f"{path}:{sline}: system_chat[{i + 1}][{j + 1}]: each message needs a role "
                                        f"({', '.join(ROLES)}) and a string content")
        examples.append(tuple({"role": m["role"], "content": m["content"]} for m in dialogue))
    unknown = sorted(set(data) - {"constitutions", "system_chat"})
    if unknown:
        at = _json_line(text, '"' + unknown[0] + '"')
        raise ConstitutionError(f"{path}:{at}: {unknown[0]}: unknown key; "
                                "valid: constitutions, system_chat")
    return Constitution(path.stem, f"llm-swarm constitution file {path.name}", tuple(principles), (),
                        tuple(examples), source, digest or hashlib.sha256(text.encode()).hexdigest()[:16])
