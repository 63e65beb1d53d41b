"""Loading a system card: YAML parsed with PyYAML, checked against the JSON Schema (review/schema.py) with jsonschema.

Every problem is one line naming the file, the line and the field (`card.yaml:12: field 'autonomy.level': ...`):
jsonschema reports where in the document a value is wrong (its path of keys and indices); PyYAML's composed node
tree keeps each node's start mark, so the path is walked through the nodes to the line. Cards in the model-card
tradition: Mitchell et al. 2019, "Model Cards for Model Reporting", arXiv:1810.03993.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from pathlib import Path
from typing import Any

import yaml

from alignlab.core.errors import UserError
from alignlab.review.schema import SCHEMA


class CardError(UserError):
    """A card that cannot be read or does not follow the schema (one line: file, line, field)."""


# Words that name a metric's kind, in order of precedence (the first kind whose pattern matches wins).
KIND_WORDS: tuple[tuple[str, str], ...] = (
    ("tests-pass", r"\btests?\b.*\bpass|\bci\b|pass rate"),
    ("engagement", r"engag|watch|time on|session|dwell|click|retention|daily active|\bdau\b|scroll"),
    ("complaints", r"complain|escalat|tickets? reopened|negative feedback"),
    ("conversion", r"conver|sales|purchase|sign-?ups?|upsell|revenue"),
    ("cost", r"cost|payout|spend|loss ratio|claims? paid|refund"),
    ("speed", r"speed|time[- ]to|latency|handle time|throughput|per hour|turnaround"),
    ("satisfaction", r"satisf|csat|rating|thumbs|nps|approval|helpful"),
    ("task-completion", r"complet|resolved|tasks? done|success rate"),
    ("accuracy", r"accura|precision|recall|f1|error rate"),
)


def infer_kind(metric: str) -> str:
    """The metric kind a metric's name suggests ('other' when no word matches)."""
    low = metric.lower()
    for kind, pattern in KIND_WORDS:
        if re.search(pattern, low):
            return kind
    return "other"


@dataclasses.dataclass(frozen=True)
class Card:
    """A validated system card: the parsed document, where it came from, and each field's line."""

    data: dict[str, Any]
    source: str
    lines: dict[str, int]
    """Dotted field path ('tools.0.permissions') -> line number in the source."""
    text: str = ""
    base: Path | None = None
    """The card file's folder: relative paths in the card (a policy file, a workspace) are read from there."""

    @property
    def name(self) -> str:
        return str(self.data["name"])

    def get(self, path: str, default: Any = None) -> Any:
        """The value at a dotted path ('safeguards.rollback'), or `default`."""
        cur: Any = self.data
        for part in path.split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
                cur = cur[int(part)]
            else:
                return default
        return cur

    def line(self, path: str) -> int | None:
        """The line of the field at `path`, or of its nearest parent in the card."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path.rpartition(".")[0]
        return None

    @property
    def objectives(self) -> list[dict[str, Any]]:
        """The objectives, each with its `kind` filled in (and `kind_inferred` True where the card left it out)."""
        out = []
        for o in self.data["objectives"]:
            o = dict(o)
            o["kind_inferred"] = "kind" not in o
            o.setdefault("kind", infer_kind(o["metric"]))
            out.append(o)
        return out

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.data.get("tools", []))

    def safeguard(self, key: str) -> Any:
        return self.data.get("safeguards", {}).get(key)

    def evidence(self, key: str) -> Any:
        return self.data.get("evidence", {}).get(key)


def _walk_lines(node: yaml.Node, path: str, out: dict[str, int], source: str) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            k = str(key.value)
            if k in seen:
                raise CardError(
                    f"{source}:{key.start_mark.line + 1}: field '{_join(path, k)}' appears twice "
                    f"(first on line {seen[k]})"
                )
            seen[k] = key.start_mark.line + 1
            sub = _join(path, k)
            out[sub] = key.start_mark.line + 1
            _walk_lines(value, sub, out, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk_lines(item, _join(path, str(i)), out, source)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _field_and_message(error: Any) -> tuple[str, str]:
    """(dotted field, a plain message) for one jsonschema ValidationError."""
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = re.search(r"'([^']+)' is a required property", error.message)
        name = missing.group(1) if missing else "?"
        return _join(path, name), "required but missing"
    if error.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", error.message.split("(")[-1])
        props = list(error.schema.get("properties", {}))
        hint = difflib.get_close_matches(extra[0], props, n=1) if extra else []
        return _join(path, extra[0] if extra else "?"), (
            f"not a card field (did you mean '{hint[0]}'?)"
            if hint
            else f"not a card field; valid fields here: {', '.join(props)}"
        )
    if error.validator == "enum":
        return path, f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "type":
        want = error.validator_value
        return (
            path,
            f"must be {'an' if str(want)[0] in 'aeiou' else 'a'} {want} (got {type(error.instance).__name__}"
            f" {_short(error.instance)})",
        )
    if error.validator == "const":
        return path, f"must be {error.validator_value!r} (got {_short(error.instance)})"
    if error.validator in ("minLength", "minItems"):
        return path, "must not be empty"
    if error.validator == "oneOf":
        return path, f"must be a command line string or a list of its arguments (got {_short(error.instance)})"
    return path, error.message


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_card(text: str, source: str = "<card>") -> Card:
    """Parse and validate card text; CardError (one line) on any problem."""
    import jsonschema

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise CardError(f"{where}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise CardError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if root is None or not isinstance(data, dict):
        raise CardError(
            f"{source}:1: a system card is a YAML mapping of fields (name, purpose, objectives, ...); "
            f"got {'nothing' if data is None else type(data).__name__}"
        )
    lines: dict[str, int] = {}
    _walk_lines(root, "", lines, source)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = list(validator.iter_errors(data))
    typos = {
        f"{_field_and_message(e)[0].rpartition('.')[0]}.{h}".lstrip(".")
        for e in errors
        if e.validator == "additionalProperties"
        for h in re.findall(r"did you mean '([^']+)'", _field_and_message(e)[1])
    }
    errors = [e for e in errors if not (e.validator == "required" and _field_and_message(e)[0] in typos)] or errors
    if errors:

        def where(e: Any) -> tuple[int, str]:
            field, _ = _field_and_message(e)
            probe = field
            while probe and probe not in lines:
                probe = probe.rpartition(".")[0]
            return (lines.get(probe, 1), field)

        first = min(errors, key=where)
        field, message = _field_and_message(first)
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise CardError(f"{source}:{where(first)[0]}: field '{field or '(top level)'}': {message}{more}")
    return Card(data, source, lines, text)


def load_card(path: str | Path) -> Card:
    """A card from a YAML file."""
    p = Path(path)
    if not p.is_file():
        raise CardError(f"{p}: no such card file (a YAML system card; see examples/cards/)")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CardError(f"{p}:1: not UTF-8 text (a system card is a YAML file)") from None
    return dataclasses.replace(parse_card(text, p.name), base=p.resolve().parent)
