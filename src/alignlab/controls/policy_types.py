"""Guard policy types: rules, budgets, flow labels, sandbox settings and the Policy they make (policy.py loads them).

Sources for the vocabulary: MCP tool annotations (read-only, destructive, idempotent,
open-world hints; modelcontextprotocol.io spec 2025-03-26), and the guard requirements users
raise in the public issue trackers of NeMo Guardrails, the OpenAI Agents SDK and Invariant
(deny rules, budgets, loop detection, information-flow labels, approval, escalation). Every error names what is
wrong and what is valid, in one message, before anything runs.
"""

from __future__ import annotations

import re
import reprlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from alignlab.controls import pytest_args
from alignlab.controls.globs import MAX_BRACE_DEPTH, MAX_PATTERN, GlobMachine, Pattern, glob_to_regex  # noqa: F401
from alignlab.core.errors import UserError

ANNOTATIONS = ("read-only", "destructive", "idempotent", "open-world", "sink")
ARG_TYPES = ("str", "int", "float", "bool", "path", "list[str]", "list[path]", "dict", "any")
ACTIONS = ("allow", "ask", "deny")
NETWORK_MODES = ("isolate", "isolate-if-available", "allow")
FS_MODES = ("confine", "confine-if-available", "none")
ENGINES = ("bwrap", "legacy")  # bubblewrap (default); "legacy": the older hand-made launcher, explicitly chosen


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
MAX_INT = 2 ** 53  # counts and sizes: far above any real setting, and exact as a float
_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 80, 80, 3, 6, 6


def _short(value: Any) -> str:
    """A repr cut to a readable length (a policy value can be megabytes, or nested thousands deep)."""
    try:
        return _REPR.repr(value)
    except (RecursionError, ValueError):  # ValueError: an int past Python's digit limit
        return f"<{type(value).__name__}>"


class PolicyError(UserError):
    """A policy file that cannot be used (syntax, unknown key, wrong type, bad pattern)."""


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


RUN_ANNOTATIONS = frozenset({"destructive"})  # the built-in `run` tool's (tools.py), unless [tools.run] says otherwise


def _argv_of(args: dict) -> list[str] | None:
    argv = args.get("argv")
    return argv if isinstance(argv, list) and all(isinstance(a, str) for a in argv) else None


@dataclass(frozen=True)
class Rule:
    action: str
    id: str
    tools: tuple[Pattern, ...] = ()
    args: tuple[tuple[str, tuple[Pattern, ...]], ...] = ()
    annotations: frozenset[str] = frozenset()
    reason: str = ""
    # Conditions on a call's `argv` (a list of strings); a rule with either never matches a call without one.
    # argv_prefix: argv begins so (argv[i] matches a prefix's i-th pattern; "" past the end of argv).
    argv_prefix: tuple[tuple[Pattern, ...], ...] = ()
    # pytest: options (any alias) pytest would see when argv runs it, each with an optional value pattern.
    pytest: tuple[tuple[str, Pattern | None], ...] = ()

    def match(self, tool: str, args: dict, ann: frozenset[str], strings: Callable[[Any], list[str]],
              env: Mapping[str, str] | None = None) -> str | None:
        """None if the rule does not apply to this call; else a detail for the reason ("" when there is none).
        `strings(value)` turns an argument into the strings its patterns are matched against."""
        if self.tools and not any(p.matches(tool) for p in self.tools):
            return None
        if self.annotations and not self.annotations <= ann:
            return None
        for name, pats in self.args:
            values = ([s for v in args.values() for s in strings(v)] if name == "*"
                      else strings(args[name]) if name in args else None)
            if values is None or not any(p.matches(s) for s in values for p in pats):
                return None
        if not (self.argv_prefix or self.pytest):
            return ""
        argv = _argv_of(args)
        if argv is None:
            return None
        if self.argv_prefix and not any(
                all(p.matches(argv[i] if i < len(argv) else "") for i, p in enumerate(prefix))
                for prefix in self.argv_prefix):
            return None
        if self.pytest:
            return self._pytest_detail(argv, env)
        return ""

    def _pytest_detail(self, argv: list[str], env: Mapping[str, str] | None) -> str | None:
        wanted = tuple(name for name, _ in self.pytest)
        for inv in pytest_args.invocations(argv, env):
            seen = pytest_args.read(inv, wanted)
            if seen.error is not None:
                return seen.error
            for name, pat in self.pytest:
                for value in seen.options.get(name, ()):
                    if pat is None or pat.matches(value):
                        shown = "" if value == "true" else f" {value!r}"
                        return f"{inv.how} would get pytest option {name}{shown}"
        return None

    def describe(self, detail: str) -> str:
        reason = self.reason or f"denied by rule {self.id}"
        return f"{reason} ({detail})" if detail else reason


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
    workspace_quota_mb: int = 512  # bytes one run may write to the workspace, for the whole sandbox (0: no quota)


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

    def __post_init__(self) -> None:
        # All protected globs in one machine: one linear pass per path (is_protected runs over whole workspaces).
        globs = [p.source for p in self.protect if p.machine is not None]
        object.__setattr__(self, "_protect_globs", GlobMachine(*globs) if globs else None)
        object.__setattr__(self, "_protect_regexes", tuple(p for p in self.protect if p.machine is None))

    def is_protected(self, relpath: str) -> bool:
        m = self._protect_globs
        return (m is not None and m.matches(relpath)) or any(p.matches(relpath) for p in self._protect_regexes)

    def exec_denial(self, argv: list[str], env: Mapping[str, str] | None = None) -> str | None:
        """Why this policy's deny rules refuse running `argv`, or None: the check a `run` call gets, usable for
        every exec inside the sandbox. `env`: the environment the program would see (PYTEST_ADDOPTS ...)."""
        if not isinstance(argv, (list, tuple)) or not argv or not all(isinstance(a, str) for a in argv):
            return f"argv must be a non-empty list of strings, got {_short(argv)}"
        run = self.tools.get("run")
        ann = run.annotations if run is not None and run.annotations else RUN_ANNOTATIONS
        args = {"argv": list(argv)}
        for rule in self.deny:
            detail = rule.match("run", args, ann, _argv_strings, env)
            if detail is not None:
                return rule.describe(detail)
        return None


def _argv_strings(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else [str(value)]
