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
import math
import os
import re
import stat
import tomllib
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from alignlab.controls import pytest_args
from alignlab.controls.globs import MAX_BRACE_DEPTH, MAX_PATTERN, GlobMachine, Pattern, glob_to_regex  # noqa: F401
from alignlab.controls.policy_types import (  # noqa: F401 - the types are part of this module's interface
    _CONTROL,
    _REPR,
    ACTIONS,
    ANNOTATIONS,
    ARG_TYPES,
    ENGINES,
    FS_MODES,
    MAX_INT,
    NETWORK_MODES,
    RUN_ANNOTATIONS,
    ArgSpec,
    Budgets,
    Escalation,
    Flow,
    Policy,
    PolicyError,
    Rule,
    SandboxSettings,
    ToolPolicy,
    _argv_of,
    _argv_strings,
    _short,
)


# --------------------------------------------------------------------------- validation
class _V:
    """Validation helpers that raise one PolicyError naming the place, the problem and the options."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, msg: str) -> None:
        text = f"policy {self.source}: {where}: {msg}"  # one line, whatever the file holds
        raise PolicyError(_CONTROL.sub(lambda m: ascii(m.group())[1:-1], text))

    def table(self, where: str, table: Any, what: str) -> dict:
        """A table whose keys are names (strings), e.g. [tools] or [sandbox].env."""
        if not isinstance(table, dict):
            self.fail(where, f"must be {what}, got {_short(table)} ({_tn(table)})")
        for key in table:
            if not isinstance(key, str):
                self.fail(where, f"keys must be strings, got {_short(key)} ({_tn(key)})")
        return table

    def keys(self, where: str, table: Any, valid: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(table, dict):
            self.fail(where, f"must be a table, got {_tn(table)}")
        for key in table:
            if key not in valid:
                hint = difflib.get_close_matches(str(key)[:100], valid, n=1)
                self.fail(where, f"unknown key {_short(key)}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                          + f"; valid keys: {', '.join(valid)}")
        for key in required:
            if key not in table:
                self.fail(where, f"missing required key {key!r}")
        return table

    def typed(self, where: str, value: Any, kind: type | tuple, what: str) -> Any:
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            self.fail(where, f"must be {what}, got {value!r} (bool)")
        if not isinstance(value, kind):
            self.fail(where, f"must be {what}, got {_short(value)} ({_tn(value)})")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(where, f"must be {what}, got {value!r} (not a finite number)")
        return value

    def positive(self, where: str, value: Any, integer: bool = True, most: float = MAX_INT) -> Any:
        self.typed(where, value, int if integer else (int, float),
                   "a positive integer" if integer else "a positive number")
        if value <= 0:
            self.fail(where, f"must be positive, got {value!r}")
        if value > most:
            self.fail(where, f"must be at most {most:g}, got {_short(value)}")
        return value

    def choice(self, where: str, value: Any, options: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in options:
            self.fail(where, f"must be one of {', '.join(options)}; got {_short(value)}")
        return value

    def strings(self, where: str, value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            self.fail(where, f"must be a string or a list of strings, got {_short(value)} ({_tn(value)})")
        return tuple(items)

    def patterns(self, where: str, value: Any) -> tuple[Pattern, ...]:
        out = []
        for text in self.strings(where, value):
            if text == "":
                self.fail(where, "empty pattern; use '**' to match anything")
            try:
                out.append(Pattern.parse(text))
            except (re.error, ValueError, OverflowError, RecursionError) as exc:
                kind = "regex" if text.startswith("re:") else "glob"
                self.fail(where, f"bad {kind} {_short(text)}: {exc} (globs: *, **, ?, [abc], {{a,b}}; "
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
    v.keys(where, raw, ("id", "tool", "args", "annotations", "argv_prefix", "pytest", "reason"))
    rid = raw.get("id", f"{action}-{i + 1}")
    v.typed(f"{where}.id", rid, str, "a string")
    where = f"[[{action}]] #{i + 1} (id {rid!r})"
    tools = v.patterns(f"{where}.tool", raw["tool"]) if "tool" in raw else ()
    args = []
    if "args" in raw:
        v.table(f"{where}.args", raw["args"], "a table of argument name -> pattern(s)")
        for name, pats in raw["args"].items():
            args.append((name, v.patterns(f"{where}.args.{name}", pats)))
    annotations = v.annotations(f"{where}.annotations", raw["annotations"]) if "annotations" in raw else frozenset()
    prefixes = []
    if "argv_prefix" in raw:
        pre = raw["argv_prefix"]
        if not isinstance(pre, list) or not pre or not all(isinstance(p, list) and p for p in pre):
            v.fail(f"{where}.argv_prefix", f"must be a non-empty list of argv prefixes, each a non-empty list of "
                   f'patterns (e.g. [["python", "-I"], ["pytest"]]), got {_short(pre)}')
        prefixes = [v.patterns(f"{where}.argv_prefix[{k}]", p) for k, p in enumerate(pre)]
    pytest = []
    if "pytest" in raw:
        for opt in v.strings(f"{where}.pytest", raw["pytest"]):
            name, eq, pat = opt.partition("=")
            if not pytest_args.valid_option(name):
                names = pytest_args.option_names() or {}
                hint = difflib.get_close_matches(name[:100], list(names), n=3)
                v.fail(f"{where}.pytest", f"{_short(name)} is not a pytest option"
                       + (f" (did you mean {', '.join(hint)}?)" if hint else "")
                       + "; give option strings as `pytest --help` lists them (-k, --deselect, ...), optionally "
                       "with =PATTERN for the value")
            pytest.append((name, v.patterns(f"{where}.pytest.{name}", pat)[0] if eq else None))
    if not tools and not args and not annotations and not prefixes and not pytest:
        v.fail(where, "matches every call; give at least one of tool, args, annotations, argv_prefix, pytest")
    reason = v.typed(f"{where}.reason", raw.get("reason", ""), str, "a string")
    return Rule(action, rid, tools, tuple(args), annotations, reason, tuple(prefixes), tuple(pytest))


def _args_schema(v: _V, where: str, raw: Any) -> dict[str, ArgSpec]:
    v.table(where, raw, "a table of argument name -> type")
    out = {}
    for name, tp in raw.items():
        v.typed(f"{where}.{name}", tp, str, f"a type name ({', '.join(ARG_TYPES)}; suffix '?' = optional)")
        base = tp[:-1] if tp.endswith("?") else tp
        v.choice(f"{where}.{name}", base, ARG_TYPES)
        out[name] = ArgSpec(base, not tp.endswith("?"))
    return out


# Dynamic-loader and libc variables: the sandbox launcher itself starts with the command's environment, before
# any confinement, so one of these naming a file in the workspace would run the agent's code unconfined.
LOADER_ENV = re.compile(r"LD_.*|GCONV_PATH|GETCONF_DIR|GLIBC_TUNABLES|HOSTALIASES|LOCPATH|MALLOC_.*|NLSPATH|"
                        r"RES_OPTIONS|RESOLV_.*")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_TIMEOUT_S = 10 ** 7  # about 115 days


def _quota_mb(v: Any, value: Any) -> int:
    """[sandbox].workspace_quota_mb: 0 (no quota) or a positive number of MiB."""
    if value == 0 and isinstance(value, int) and not isinstance(value, bool):
        return 0
    return v.positive("[sandbox].workspace_quota_mb", value, most=2 ** 30)


def _env_name(v: _V, where: str, name: str) -> None:
    if not ENV_NAME.fullmatch(name):
        v.fail(where, f"{_short(name)} is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
    if LOADER_ENV.fullmatch(name):
        v.fail(where, f"{name} is refused: it changes how programs (the sandbox launcher first, before it confines "
               "anything) load code and data")


def _hide_path(v: _V, h: str) -> None:
    """A folder to hide must be a plain absolute path, and not `/` (that would replace the read-only root)."""
    if not h.startswith("/"):
        v.fail("[sandbox].hide", f"entries must be absolute paths, got {_short(h)}")
    parts = h.split("/")[1:]
    if _CONTROL.search(h) or any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in (".", ".."):
        v.fail("[sandbox].hide", f"{_short(h)} is not a plain absolute path (no '.', '..', '//' or control "
               "characters)")
    if h.rstrip("/") == "":
        v.fail("[sandbox].hide", "hiding '/' would replace the whole read-only filesystem with an empty writable "
               "one: confinement would be gone; hide specific folders")


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
    if isinstance(version, int) and abs(version) > MAX_INT:
        v.fail("[policy].version", "integer too large; write it as a string")
    default = v.choice("[policy].default", head.get("default", "allow"), ACTIONS)
    ask_destructive = v.typed("[policy].ask_destructive", head.get("ask_destructive", False), bool, "true or false")
    v.typed("[policy].description", head.get("description", ""), str, "a string")

    tools = {}
    for tname, traw in v.table("[tools]", data.get("tools", {}), "a table of tool name -> settings").items():
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
        dup = {i for i, n in Counter(r.id for r in rules[action]).items() if n > 1}
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
        per_tool = v.table("[budgets].per_tool", b.get("per_tool", {}), "a table of tool name -> count")
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
            wall_time_s=float(v.positive("[budgets].wall_time_s", b["wall_time_s"], integer=False, most=MAX_TIMEOUT_S))
            if "wall_time_s" in b else None,
            loop_repeat=repeat, loop_window=window)

    flow = Flow()
    if "flow" in data:
        f = v.keys("[flow]", data["flow"], ("untrusted", "action", "min_atom", "sinks", "trusted_text"))
        sinks = v.table("[flow].sinks", f.get("sinks", {}), "a table of sink tool -> guarded argument names")
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
                                                  "hide", "engine", "max_processes", "cpus",
                                                  "workspace_quota_mb"))
        env = v.table("[sandbox].env", s.get("env", {}), "a table of NAME -> string")
        passthrough = v.strings("[sandbox].env_passthrough", s.get("env_passthrough", []))
        for k, val in env.items():
            v.typed(f"[sandbox].env.{k}", val, str, "a string")
            if "\x00" in val:
                v.fail(f"[sandbox].env.{k}", "NUL byte in the value")
        for where, names in (("[sandbox].env", list(env)), ("[sandbox].env_passthrough", passthrough)):
            for k in names:
                _env_name(v, where, k)
        hide = v.strings("[sandbox].hide", s.get("hide", list(sb.hide)))
        for h in hide:
            _hide_path(v, h)
        sb = SandboxSettings(
            network=v.choice("[sandbox].network", s.get("network", sb.network), NETWORK_MODES),
            filesystem=v.choice("[sandbox].filesystem", s.get("filesystem", sb.filesystem), FS_MODES),
            timeout_s=float(v.positive("[sandbox].timeout_s", s.get("timeout_s", sb.timeout_s), integer=False,
                                       most=MAX_TIMEOUT_S)),
            memory_mb=v.positive("[sandbox].memory_mb", s.get("memory_mb", sb.memory_mb), most=2 ** 40),
            max_output_bytes=v.positive("[sandbox].max_output_bytes", s.get("max_output_bytes", sb.max_output_bytes),
                                        most=2 ** 40),
            max_file_bytes=v.positive("[sandbox].max_file_bytes", s.get("max_file_bytes", sb.max_file_bytes),
                                      most=2 ** 62),
            env=dict(env), env_passthrough=passthrough,
            hide=hide, engine=v.choice("[sandbox].engine", s.get("engine", sb.engine), ENGINES),
            max_processes=v.positive("[sandbox].max_processes", s.get("max_processes", sb.max_processes),
                                     most=2 ** 22),
            cpus=float(v.positive("[sandbox].cpus", s.get("cpus", sb.cpus), integer=False, most=2 ** 16)),
            workspace_quota_mb=_quota_mb(v, s.get("workspace_quota_mb", sb.workspace_quota_mb)))

    return Policy(name=name, declared_version=str(version), digest=text_digest, default=default,
                  ask_destructive=ask_destructive, tools=tools, deny=rules["deny"], ask=rules["ask"],
                  allow=rules["allow"], protect=protect, protect_reason=preason, budgets=budgets, flow=flow,
                  escalation=esc, sandbox=sb, source=source)


MAX_POLICY_BYTES = 1 << 20


def _error(source: str, msg: str) -> PolicyError:
    return PolicyError(_CONTROL.sub(lambda m: ascii(m.group())[1:-1], f"policy {source}: {msg}"))


def loads(text: str, fmt: str = "toml", source: str = "<inline>") -> Policy:
    """Parse policy text (`fmt` toml or yaml) and validate it."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _error(source, f"not valid Unicode text (lone surrogate at character {exc.start})") from None
    if len(raw) > MAX_POLICY_BYTES:
        raise _error(source, f"larger than {MAX_POLICY_BYTES} bytes")
    digest = hashlib.sha256(raw).hexdigest()
    if fmt == "toml":
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, ValueError) as exc:  # ValueError: an integer past Python's digit limit
            raise _error(source, f"not valid TOML: {exc}") from None
        except RecursionError:
            raise _error(source, "not valid TOML: nested too deeply") from None
    elif fmt == "yaml":
        try:
            import yaml  # PyYAML: optional; TOML needs nothing beyond the standard library
        except ImportError:
            raise _error(source, "YAML policies need PyYAML (pip install pyyaml); "
                         "or write the policy in TOML") from None
        try:
            data = yaml.safe_load(text)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            raise _error(source, f"not valid YAML: {' '.join(str(exc).split())[:300]}") from None
        except RecursionError:
            raise _error(source, "not valid YAML: nested too deeply") from None
    else:
        raise _error(source, f"unknown format {_short(fmt)}; valid formats: toml, yaml")
    try:
        return validate(data, digest, source)
    except RecursionError:
        raise _error(source, "nested too deeply") from None


def load(path: str | Path) -> Policy:
    """Load a policy file (`.toml`, `.yaml`/`.yml`), or a bundled policy by name (`default-coding`).

    Only a regular file is read (a FIFO or device would block or never end), at most MAX_POLICY_BYTES.
    """
    p = Path(path)
    shown = _short(str(path))
    try:
        exists = os.path.lexists(p)
    except ValueError:  # a NUL byte
        raise _error(shown, "not a usable file name") from None
    if not exists and not p.suffix:
        bundled = resources.files("alignlab.controls").joinpath("policies", f"{path}.toml")
        if bundled.is_file():
            return loads(bundled.read_text(encoding="utf-8"), "toml", source=f"{path} (bundled)")
        raise PolicyError(f"no policy file {shown} and no bundled policy of that name; bundled policies: "
                          f"{', '.join(bundled_names())}")
    fmt = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}.get(p.suffix.lower())
    if fmt is None:
        raise PolicyError(f"policy file {shown}: unknown extension {_short(p.suffix)}; valid: .toml, .yaml, .yml")
    try:
        if not stat.S_ISREG(os.stat(p).st_mode):
            raise PolicyError(f"policy file {shown} is not a regular file (a folder, FIFO, socket or device); "
                              "give a regular file")
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)  # the file opened, not the one stat-ed a moment before
            if not stat.S_ISREG(st.st_mode):
                raise PolicyError(f"policy file {shown} is not a regular file; give a regular file")
            if st.st_size > MAX_POLICY_BYTES:
                raise PolicyError(f"policy file {shown} is larger than {MAX_POLICY_BYTES} bytes")
            data = os.read(fd, MAX_POLICY_BYTES + 1)
        finally:
            os.close(fd)
        text = data.decode("utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {shown}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"cannot read policy file {shown}: not UTF-8 text (byte {exc.start})") from None
    return loads(text, fmt, source=str(p))


def bundled_names() -> list[str]:
    folder = resources.files("alignlab.controls").joinpath("policies")
    return sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".toml"))
