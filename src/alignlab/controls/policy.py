"""Guard policy files (TOML, or YAML when PyYAML is installed): parsing and strict validation.

Sources for the vocabulary: MCP tool annotations (read-only, destructive, idempotent,
open-world hints; modelcontextprotocol.io spec 2025-03-26), and the guard requirements users
raise in the public issue trackers of NeMo Guardrails, the OpenAI Agents SDK and Invariant
(deny rules, budgets, loop detection, information-flow labels, approval, escalation). Every error names what is
wrong and what is valid, in one message, before anything runs.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from alignlab.core.errors import UserError

ANNOTATIONS = ("read-only", "destructive", "idempotent", "open-world", "sink")
ARG_TYPES = ("str", "int", "float", "bool", "path", "list[str]", "list[path]", "dict", "any")
ACTIONS = ("allow", "ask", "deny")
NETWORK_MODES = ("isolate", "isolate-if-available", "allow")
FS_MODES = ("confine", "confine-if-available", "none")
ENGINES = ("bwrap", "legacy")  # bubblewrap (default); "legacy": the older hand-made launcher, explicitly chosen


class PolicyError(UserError):
    """A policy file that cannot be used (syntax, unknown key, wrong type, bad pattern)."""


# --------------------------------------------------------------------------- patterns
def glob_to_regex(glob: str) -> str:
    """Translate a path glob to a regex: `**` crosses `/`, `*` and `?` do not, `[..]`, `{a,b}`.

    Written here because fnmatch lets `*` cross `/` and has no `**` or braces.
    """
    out, i, depth, n = [], 0, 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if glob.startswith("**", i):
                at_start = i == 0 or glob[i - 1] == "/"
                if at_start and glob.startswith("**/", i):
                    out.append("(?:.*/)?")
                    i += 3
                    continue
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1
            if j < n and glob[j] in "!^":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:
                raise ValueError(f"unterminated '[' at position {i}")
            body = glob[i + 1:j]
            neg = body[:1] in ("!", "^")
            body = body[1:] if neg else body
            cls = "[" + ("^" if neg else "") + body.replace("\\", "\\\\") + "]"
            try:  # a reversed range such as [z-a] is no class at all
                re.compile(cls)
            except re.error as exc:
                raise ValueError(f"bad character class {glob[i:j + 1]!r} at position {i}: {exc.msg}") from None
            out.append(cls)
            i = j
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}":
            if depth == 0:
                raise ValueError(f"unmatched '}}' at position {i}")
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise ValueError("unmatched '{'")
    return "".join(out)


@dataclass(frozen=True)
class Pattern:
    """One glob (default) or regex (`re:` prefix) matched against the whole string."""

    source: str
    regex: re.Pattern

    @classmethod
    def parse(cls, text: str) -> "Pattern":
        if text.startswith("re:"):
            return cls(text, re.compile(text[3:]))
        return cls(text, re.compile(glob_to_regex(text), re.DOTALL))

    def matches(self, value: str) -> bool:
        return self.regex.fullmatch(value) is not None


# --------------------------------------------------------------------------- dataclasses
@dataclass(frozen=True)
class ArgSpec:
    type: str
    required: bool = True


@dataclass(frozen=True)
class ToolPolicy:
    name: str
    annotations: frozenset[str] = frozenset()
    args: dict[str, ArgSpec] | None = None  # None: schema given by the tool's code


@dataclass(frozen=True)
class Rule:
    action: str
    id: str
    tools: tuple[Pattern, ...] = ()
    args: tuple[tuple[str, tuple[Pattern, ...]], ...] = ()
    annotations: frozenset[str] = frozenset()
    reason: str = ""


@dataclass(frozen=True)
class Budgets:
    max_calls: int | None = None
    per_tool: dict[str, int] = field(default_factory=dict)
    wall_time_s: float | None = None
    loop_repeat: int | None = None
    loop_window: int = 10


@dataclass(frozen=True)
class Flow:
    untrusted: tuple[Pattern, ...] = ()
    action: str = "deny"
    min_atom: int = 6
    sinks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    trusted_text: tuple[str, ...] = ()


@dataclass(frozen=True)
class Escalation:
    max_denials: int | None = None
    monitor_threshold: float | None = None


@dataclass(frozen=True)
class SandboxSettings:
    network: str = "isolate"
    filesystem: str = "confine-if-available"
    timeout_s: float = 60.0
    memory_mb: int = 1024
    max_output_bytes: int = 1_000_000
    max_file_bytes: int = 10_000_000
    env: dict[str, str] = field(default_factory=dict)
    env_passthrough: tuple[str, ...] = ()
    hide: tuple[str, ...] = ("/root", "/home")
    engine: str = "bwrap"
    max_processes: int = 256
    cpus: float = 2.0


@dataclass(frozen=True)
class Policy:
    name: str
    declared_version: str
    digest: str
    default: str = "allow"
    ask_destructive: bool = False
    tools: dict[str, ToolPolicy] = field(default_factory=dict)
    deny: tuple[Rule, ...] = ()
    ask: tuple[Rule, ...] = ()
    allow: tuple[Rule, ...] = ()
    protect: tuple[Pattern, ...] = ()
    protect_reason: str = "protected path"
    budgets: Budgets = Budgets()
    flow: Flow = Flow()
    escalation: Escalation = Escalation()
    sandbox: SandboxSettings = SandboxSettings()
    source: str = "<inline>"

    @property
    def version(self) -> str:
        """The declared version plus a digest of the exact text: approvals bind to this."""
        return f"{self.name}@{self.declared_version}+{self.digest[:16]}"

    def is_protected(self, relpath: str) -> bool:
        return any(p.matches(relpath) for p in self.protect)


# --------------------------------------------------------------------------- validation
class _V:
    """Validation helpers that raise one PolicyError naming the place, the problem and the options."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, msg: str) -> None:
        raise PolicyError(f"policy {self.source}: {where}: {msg}")

    def keys(self, where: str, table: Any, valid: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(table, dict):
            self.fail(where, f"must be a table, got {_tn(table)}")
        for key in table:
            if key not in valid:
                hint = difflib.get_close_matches(str(key), valid, n=1)
                self.fail(where, f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                          + f"; valid keys: {', '.join(valid)}")
        for key in required:
            if key not in table:
                self.fail(where, f"missing required key {key!r}")
        return table

    def typed(self, where: str, value: Any, kind: type | tuple, what: str) -> Any:
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            self.fail(where, f"must be {what}, got {value!r} (bool)")
        if not isinstance(value, kind):
            self.fail(where, f"must be {what}, got {value!r} ({_tn(value)})")
        return value

    def positive(self, where: str, value: Any, integer: bool = True) -> Any:
        self.typed(where, value, int if integer else (int, float),
                   "a positive integer" if integer else "a positive number")
        if value <= 0:
            self.fail(where, f"must be positive, got {value!r}")
        return value

    def choice(self, where: str, value: Any, options: tuple[str, ...]) -> str:
        if value not in options:
            self.fail(where, f"must be one of {', '.join(options)}; got {value!r}")
        return value

    def strings(self, where: str, value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            self.fail(where, f"must be a string or a list of strings, got {value!r} ({_tn(value)})")
        return tuple(items)

    def patterns(self, where: str, value: Any) -> tuple[Pattern, ...]:
        out = []
        for text in self.strings(where, value):
            if text == "":
                self.fail(where, "empty pattern; use '**' to match anything")
            try:
                out.append(Pattern.parse(text))
            except (re.error, ValueError) as exc:
                kind = "regex" if text.startswith("re:") else "glob"
                self.fail(where, f"bad {kind} {text!r}: {exc} (globs: *, **, ?, [abc], {{a,b}}; "
                          "regex: prefix 're:')")
        return tuple(out)

    def annotations(self, where: str, value: Any) -> frozenset[str]:
        names = self.strings(where, value)
        for a in names:
            self.choice(where, a, ANNOTATIONS)
        return frozenset(names)


def _tn(value: Any) -> str:
    return {dict: "table", list: "list", str: "string", bool: "bool", int: "integer", float: "number"}.get(
        type(value), type(value).__name__)


def _rule(v: _V, action: str, i: int, raw: Any) -> Rule:
    where = f"[[{action}]] #{i + 1}"
    v.keys(where, raw, ("id", "tool", "args", "annotations", "reason"))
    rid = raw.get("id", f"{action}-{i + 1}")
    v.typed(f"{where}.id", rid, str, "a string")
    where = f"[[{action}]] #{i + 1} (id {rid!r})"
    tools = v.patterns(f"{where}.tool", raw["tool"]) if "tool" in raw else ()
    args = []
    if "args" in raw:
        v.typed(f"{where}.args", raw["args"], dict, "a table of argument name -> pattern(s)")
        for name, pats in raw["args"].items():
            args.append((name, v.patterns(f"{where}.args.{name}", pats)))
    annotations = v.annotations(f"{where}.annotations", raw["annotations"]) if "annotations" in raw else frozenset()
    if not tools and not args and not annotations:
        v.fail(where, "matches every call; give at least one of tool, args, annotations")
    reason = v.typed(f"{where}.reason", raw.get("reason", ""), str, "a string")
    return Rule(action, rid, tools, tuple(args), annotations, reason)


def _args_schema(v: _V, where: str, raw: Any) -> dict[str, ArgSpec]:
    v.typed(where, raw, dict, "a table of argument name -> type")
    out = {}
    for name, tp in raw.items():
        v.typed(f"{where}.{name}", tp, str, f"a type name ({', '.join(ARG_TYPES)}; suffix '?' = optional)")
        base = tp[:-1] if tp.endswith("?") else tp
        v.choice(f"{where}.{name}", base, ARG_TYPES)
        out[name] = ArgSpec(base, not tp.endswith("?"))
    return out


def validate(data: Any, text_digest: str, source: str = "<inline>") -> Policy:
    """Build a Policy from parsed data, raising one PolicyError for the first problem."""
    v = _V(source)
    top = ("policy", "tools", "deny", "ask", "allow", "protect", "budgets", "flow", "escalation", "sandbox")
    v.keys("top level", data, top, required=("policy",))
    head = v.keys("[policy]", data["policy"], ("name", "version", "default", "ask_destructive", "description"),
                  required=("name", "version"))
    name = v.typed("[policy].name", head["name"], str, "a string")
    version = head["version"]
    v.typed("[policy].version", version, (str, int), "a string or integer")
    default = v.choice("[policy].default", head.get("default", "allow"), ACTIONS)
    ask_destructive = v.typed("[policy].ask_destructive", head.get("ask_destructive", False), bool, "true or false")
    v.typed("[policy].description", head.get("description", ""), str, "a string")

    tools = {}
    for tname, traw in v.typed("[tools]", data.get("tools", {}), dict, "a table of tool name -> settings").items():
        where = f"[tools.{tname}]"
        v.keys(where, traw, ("annotations", "args"))
        ann = v.annotations(f"{where}.annotations", traw.get("annotations", []))
        if "read-only" in ann and ann & {"destructive", "sink"}:
            v.fail(f"{where}.annotations", "a tool cannot be both read-only and destructive/sink")
        schema = _args_schema(v, f"{where}.args", traw["args"]) if "args" in traw else None
        tools[tname] = ToolPolicy(tname, ann, schema)

    rules = {}
    for action in ACTIONS:
        raw = data.get(action, [])
        v.typed(f"[[{action}]]", raw, list, f"an array of tables ([[{action}]] blocks)")
        rules[action] = tuple(_rule(v, action, i, r) for i, r in enumerate(raw))
        ids = [r.id for r in rules[action]]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            v.fail(f"[[{action}]]", f"duplicate rule id(s) {sorted(dup)}")

    protect, preason = (), "protected path"
    if "protect" in data:
        praw = v.keys("[protect]", data["protect"], ("paths", "reason"), required=("paths",))
        protect = v.patterns("[protect].paths", praw["paths"])
        preason = v.typed("[protect].reason", praw.get("reason", preason), str, "a string")

    budgets = Budgets()
    if "budgets" in data:
        b = v.keys("[budgets]", data["budgets"], ("max_calls", "per_tool", "wall_time_s", "loop"))
        per_tool = v.typed("[budgets].per_tool", b.get("per_tool", {}), dict, "a table of tool name -> count")
        for t, n in per_tool.items():
            v.positive(f"[budgets].per_tool.{t}", n)
        loop = v.keys("[budgets.loop]", b.get("loop", {}), ("repeat", "window"))
        repeat = v.positive("[budgets.loop].repeat", loop["repeat"]) if "repeat" in loop else None
        window = v.positive("[budgets.loop].window", loop.get("window", 10))
        if repeat is not None and repeat > window:
            v.fail("[budgets.loop]", f"repeat ({repeat}) must not exceed window ({window})")
        budgets = Budgets(
            max_calls=v.positive("[budgets].max_calls", b["max_calls"]) if "max_calls" in b else None,
            per_tool=dict(per_tool),
            wall_time_s=float(v.positive("[budgets].wall_time_s", b["wall_time_s"], integer=False))
            if "wall_time_s" in b else None,
            loop_repeat=repeat, loop_window=window)

    flow = Flow()
    if "flow" in data:
        f = v.keys("[flow]", data["flow"], ("untrusted", "action", "min_atom", "sinks", "trusted_text"))
        sinks = v.typed("[flow].sinks", f.get("sinks", {}), dict, "a table of sink tool -> guarded argument names")
        flow = Flow(
            untrusted=v.patterns("[flow].untrusted", f.get("untrusted", [])),
            action=v.choice("[flow].action", f.get("action", "deny"), ("deny", "ask")),
            min_atom=v.positive("[flow].min_atom", f.get("min_atom", 6)),
            sinks={k: v.strings(f"[flow].sinks.{k}", s) for k, s in sinks.items()},
            trusted_text=v.strings("[flow].trusted_text", f.get("trusted_text", [])))

    esc = Escalation()
    if "escalation" in data:
        e = v.keys("[escalation]", data["escalation"], ("max_denials", "monitor_threshold"))
        thr = e.get("monitor_threshold")
        if thr is not None:
            v.typed("[escalation].monitor_threshold", thr, (int, float), "a number in [0, 1]")
            if not 0 <= thr <= 1:
                v.fail("[escalation].monitor_threshold", f"must be in [0, 1], got {thr!r}")
        esc = Escalation(v.positive("[escalation].max_denials", e["max_denials"]) if "max_denials" in e else None,
                         None if thr is None else float(thr))

    sb = SandboxSettings()
    if "sandbox" in data:
        s = v.keys("[sandbox]", data["sandbox"], ("network", "filesystem", "timeout_s", "memory_mb",
                                                  "max_output_bytes", "max_file_bytes", "env", "env_passthrough",
                                                  "hide", "engine", "max_processes", "cpus"))
        env = v.typed("[sandbox].env", s.get("env", {}), dict, "a table of NAME -> string")
        for k, val in env.items():
            v.typed(f"[sandbox].env.{k}", val, str, "a string")
        hide = v.strings("[sandbox].hide", s.get("hide", list(sb.hide)))
        for h in hide:
            if not h.startswith("/"):
                v.fail("[sandbox].hide", f"entries must be absolute paths, got {h!r}")
        sb = SandboxSettings(
            network=v.choice("[sandbox].network", s.get("network", sb.network), NETWORK_MODES),
            filesystem=v.choice("[sandbox].filesystem", s.get("filesystem", sb.filesystem), FS_MODES),
            timeout_s=float(v.positive("[sandbox].timeout_s", s.get("timeout_s", sb.timeout_s), integer=False)),
            memory_mb=v.positive("[sandbox].memory_mb", s.get("memory_mb", sb.memory_mb)),
            max_output_bytes=v.positive("[sandbox].max_output_bytes", s.get("max_output_bytes", sb.max_output_bytes)),
            max_file_bytes=v.positive("[sandbox].max_file_bytes", s.get("max_file_bytes", sb.max_file_bytes)),
            env=dict(env), env_passthrough=v.strings("[sandbox].env_passthrough", s.get("env_passthrough", [])),
            hide=hide, engine=v.choice("[sandbox].engine", s.get("engine", sb.engine), ENGINES),
            max_processes=v.positive("[sandbox].max_processes", s.get("max_processes", sb.max_processes)),
            cpus=float(v.positive("[sandbox].cpus", s.get("cpus", sb.cpus), integer=False)))

    return Policy(name=name, declared_version=str(version), digest=text_digest, default=default,
                  ask_destructive=ask_destructive, tools=tools, deny=rules["deny"], ask=rules["ask"],
                  allow=rules["allow"], protect=protect, protect_reason=preason, budgets=budgets, flow=flow,
                  escalation=esc, sandbox=sb, source=source)


def loads(text: str, fmt: str = "toml", source: str = "<inline>") -> Policy:
    """Parse policy text (`fmt` toml or yaml) and validate it."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if fmt == "toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy {source}: not valid TOML: {exc}") from None
    elif fmt == "yaml":
        try:
            import yaml  # PyYAML: optional; TOML needs nothing beyond the standard library
        except ImportError:
            raise PolicyError(f"policy {source}: YAML policies need PyYAML (pip install pyyaml); "
                              "or write the policy in TOML") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PolicyError(f"policy {source}: not valid YAML: {' '.join(str(exc).split())}") from None
    else:
        raise PolicyError(f"policy {source}: unknown format {fmt!r}; valid formats: toml, yaml")
    return validate(data, digest, source)


def load(path: str | Path) -> Policy:
    """Load a policy file (`.toml`, `.yaml`/`.yml`), or a bundled policy by name (`default-coding`)."""
    p = Path(path)
    if not p.exists() and not p.suffix:
        bundled = resources.files("alignlab.controls").joinpath("policies", f"{path}.toml")
        if bundled.is_file():
            return loads(bundled.read_text(encoding="utf-8"), "toml", source=f"{path} (bundled)")
        raise PolicyError(f"no policy file {str(path)!r} and no bundled policy of that name; bundled policies: "
                          f"{', '.join(bundled_names())}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {str(p)!r}: {exc}") from None
    fmt = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}.get(p.suffix.lower())
    if fmt is None:
        raise PolicyError(f"policy file {str(p)!r}: unknown extension {p.suffix!r}; valid: .toml, .yaml, .yml")
    return loads(text, fmt, source=str(p))


def bundled_names() -> list[str]:
    folder = resources.files("alignlab.controls").joinpath("policies")
    return sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".toml"))
