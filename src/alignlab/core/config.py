"""Frozen config dataclasses: field docs from attribute docstrings, `--set` parsing, hashing.

A component's config is a frozen dataclass whose fields each carry a docstring (a string
literal on the line after the field, as in simple-parsing). `field_docs` reads those with
`ast`, so the CLI help is written once, in the code. We parse them ourselves because the
standard library drops attribute docstrings at runtime and the small need does not justify
a dependency.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import inspect
import json
import textwrap
import types
import typing
from typing import Any, Literal, TypeVar, get_args, get_origin

from alignlab.core.errors import ConfigError

C = TypeVar("C")


@dataclasses.dataclass(frozen=True)
class BaseConfig:
    """Base of every component config. Subclasses add documented fields."""

    @classmethod
    def quick(cls: type[C]) -> C:
        """The preset that finishes on a laptop CPU in seconds (default: the defaults)."""
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


@functools.lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """{field name: docstring} for a dataclass, from the string literal after each field."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        tree = ast.parse(source)
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin is tuple:
        return f"comma-separated list of {_type_name(get_args(tp)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _parse_scalar(text: str, tp: Any) -> Any:
    origin = get_origin(tp)
    if origin is Literal:
        for choice in get_args(tp):
            if str(choice) == text:
                return choice
        raise ValueError
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if type(None) in args and text.lower() in ("none", "null", ""):
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _parse_scalar(text, arg)
            except ValueError:
                continue
        raise ValueError
    if tp is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError
    if tp is int:
        return int(text)
    if tp is float:
        value = float(text)
        return value
    if tp is str:
        return text
    raise ValueError


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside parentheses (so `a(x=1, y=2),b` is two items); ValueError if unbalanced."""
    parts, depth, cur = [], 0, []
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            raise ValueError(f"unbalanced ')' in {text!r}")
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ValueError(f"unbalanced '(' in {text!r}")
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def parse_value(text: str, tp: Any) -> Any:
    """Parse a `--set` value as the field's type; raise ValueError if it does not fit. A list
    splits on commas outside parentheses, so items may be technique specs such as `quantilizer(q=0.1)`."""
    if get_origin(tp) is tuple:
        (elem, *rest) = get_args(tp)
        if text.strip().lower() == "none":  # the empty list (e.g. --set techniques=none)
            return ()
        parts = [p for p in split_top(text) if p]
        if not parts:
            raise ValueError
        return tuple(_parse_scalar(p, elem) for p in parts)
    return _parse_scalar(text.strip(), tp)


def config_fields(cls: type) -> list[tuple[str, Any, Any, str]]:
    """[(name, type, default, doc)] for a config class."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        )
        out.append((f.name, hints[f.name], default, docs.get(f.name, "")))
    return out


def apply_overrides(config: C, overrides: list[str], owner: str = "config") -> C:
    """Return `config` with `key=value` overrides applied, each parsed as its field's type."""
    fields = {name: (tp, doc) for name, tp, _, doc in config_fields(type(config))}
    changes: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value; valid keys for {owner}: {', '.join(fields)}")
        key, _, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if key not in fields:
            raise ConfigError(f"unknown config key {key!r} for {owner}; valid keys: {', '.join(fields)}")
        tp = fields[key][0]
        try:
            changes[key] = parse_value(text, tp)
        except (ValueError, TypeError):
            raise ConfigError(f"--set {key}={text!r}: expected {_type_name(tp)}") from None
    try:
        return dataclasses.replace(config, **changes)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid {owner} config: {exc}") from None


def describe_fields(cls: type) -> list[tuple[str, str, str, str]]:
    """[(name, type name, default, doc)] for help text."""
    return [(n, _type_name(tp), repr(_jsonable(d)), doc) for n, tp, d, doc in config_fields(cls)]


def stable_hash(obj: Any, length: int = 16) -> str:
    """A short, stable content hash of a JSON-serialisable object."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]
