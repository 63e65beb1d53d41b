"""Pytest command lines read as pytest reads them: which argv run pytest, and which of its options they set.

The options are parsed by pytest's own parser (`_pytest.config.get_config()`: every option the built-in
plugins register, parsed by `Parser.parse_known_and_unknown_args`, the argparse subclass pytest itself uses,
so `-kfoo`, `-k=foo`, `-xk foo`, `--co`, `--deselect=x`, `--` and its refusal of abbreviations behave as in
pytest), after the two steps pytest takes before it: `PYTEST_ADDOPTS` split with shlex and put first, and
the `-p` pre-scan over every argument (`PytestPluginManager.consider_preparse`, which does not stop at `--`).
`PYTEST_PLUGINS` counts as `-p`. Argument files (`@file`, read by pytest's parser from the command's own
folder) cannot be seen from here, so they are reported, never guessed. Without pytest installed, a
conservative token scan stands in (it may deny more, never less). Source: pytest 9 `_pytest/config`.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shlex
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

PYTEST_PROGRAM = re.compile(r"(py\.test|pytest)(-?[0-9]+(\.[0-9]+)*)?(\.exe)?")
PYTEST_MODULE = re.compile(r"(py\.test|pytest)(\.__main__)?")
PYTHON_PROGRAM = re.compile(r"(python|pypy)([0-9]+(\.[0-9]+)*)?[dmu]*(\.exe)?")
PY_FLAGS = set("bBdEhiIOPqRsSuvVx?")  # CPython's options without a value (python(1))
PY_VALUED = set("cmWX")  # ... and with one: the rest of the cluster, else the next argument
SPLIT_STRING = re.compile(r"-[a-zA-Z]*S(.*)|--split-string(=.*)?")  # env -S / --split-string
ENV_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)
# Inline code that runs pytest: imports it or names it as a program or module (a path such as /tmp/pytest-of-x/
# is not a mention). A heuristic for `python -c`: code can always spell the name otherwise, which only the
# every-exec check (or, in-process, nothing at the exec level) sees.
MENTIONS_PYTEST = re.compile(r"(\bimport\s+_?pytest\b|\bfrom\s+_?pytest\b|\b_?pytest\s*\.\s*main\b"
                             r"|[\"'](-m\s*)?(py\.test|pytest)[\"']|__import__\(\s*[\"']_?pytest)")
# Aliases of pytest 9's selection and configuration options, for the scan used only without pytest installed.
FALLBACK_ALIASES = (("-o", "--override-ini"), ("-c", "--config-file", "--inifile"),
                    ("--co", "--collect-only", "--collectonly"), ("--lf", "--last-failed"), ("--ff", "--failed-first"),
                    ("--nf", "--new-first"), ("--sw", "--stepwise"), ("--sw-skip", "--stepwise-skip"),
                    ("--setup-only", "--setuponly"), ("--setup-plan", "--setupplan"), ("-m",), ("-k",),
                    ("--deselect",), ("--ignore",), ("--ignore-glob",), ("--rootdir",), ("--confcutdir",),
                    ("--noconftest",), ("--fixtures", "--funcargs"), ("-x", "--exitfirst"), ("-q", "--quiet"),
                    ("-v", "--verbose"))


@dataclass(frozen=True)
class Invocation:
    """One way an argv runs pytest: the arguments pytest gets and the environment it sees (None: opaque code)."""

    args: tuple[str, ...] | None
    env: tuple[tuple[str, str], ...]
    how: str


@functools.lru_cache(maxsize=1)
def _pytest_parser() -> tuple[Any, Any, dict[str, str]] | None:
    """(pytest's Parser, its default namespace, option string -> dest), built once; None without pytest."""
    try:
        from _pytest.config import get_config
        config = get_config()
        parser = config._parser
        names = dict(parser._opt2dest)
        for group in (parser._anonymous, *parser._groups):
            for opt in group.options:
                for n in opt.names():
                    names.setdefault(n, opt.dest)
        return parser, config.option, names
    except Exception:  # noqa: BLE001 - no pytest, or a version whose internals differ: the token scan stands in
        return None


def option_names() -> dict[str, str] | None:
    """Every pytest option string -> its dest, from pytest's parser; None without pytest."""
    got = _pytest_parser()
    return dict(got[2]) if got else None


def valid_option(name: str) -> bool:
    names = option_names()
    if names is not None:
        return name in names
    return re.fullmatch(r"-[A-Za-z]|--[a-z][a-z0-9-]*", name) is not None


def _python_module(argv: list[str]) -> tuple[str, str, list[str]] | None:
    """For a Python interpreter's argv: ('m', module, rest) or ('c', code, rest) or ('script', path, rest)."""
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return ("script", argv[i + 1], argv[i + 2:]) if i + 1 < len(argv) else None
        if not a.startswith("-") or a == "-":
            return ("script", a, argv[i + 1:])
        if a.startswith("--"):
            i += 2 if a == "--check-hash-based-pycs" else 1
            continue
        for j, ch in enumerate(a[1:], start=1):
            if ch in PY_VALUED:
                value = a[j + 1:]
                nxt = i + 1
                if not value:
                    if i + 1 >= len(argv):
                        return None
                    value, nxt = argv[i + 1], i + 2
                if ch in "cm":
                    return (ch, value, argv[nxt:])
                i = nxt - 1
                break
            if ch not in PY_FLAGS:
                break
        i += 1
    return None


def invocations(argv: list[str], env: Mapping[str, str] | None = None) -> Iterator[Invocation]:
    """Every way `argv` may run pytest, looked for at every position, so a wrapper before it (env, timeout,
    nice, xargs, find -exec, coverage run, uv run, ...) cannot hide it: a program named pytest, a Python
    interpreter with `-m pytest` (clusters such as `-Im pytest` too), or inline code (`-c`) that mentions
    pytest (opaque: its options cannot be read). `NAME=VALUE` words and `env -S` strings before it are added
    to the environment it sees (over-counting an assignment can only deny more)."""
    base = dict(env or {})
    words = list(argv)
    in_env = False  # between an `env` program and the command it runs
    i = 0
    while i < len(words):
        w = words[i]
        name = os.path.basename(w)
        m = SPLIT_STRING.fullmatch(w) if in_env else None
        if m is not None:
            text = m.group(1) if m.group(1) is not None else (m.group(2) or "")[1:]
            drop = 1
            if not text and m.group(2) is None and i + 1 < len(words):
                text, drop = words[i + 1], 2
            try:
                words[i:i + drop] = shlex.split(text)
            except ValueError:
                yield Invocation(None, tuple(sorted(base.items())), f"env -S {text!r} (cannot be split)")
                del words[i:i + drop]
            in_env = False
            continue
        if name == "env":
            in_env = True
        elif not (in_env and (w.startswith("-") or ENV_ASSIGN.fullmatch(w))):
            in_env = False
        a = ENV_ASSIGN.fullmatch(w)
        if a is not None:
            base[a.group(1)] = a.group(2)
        elif PYTEST_PROGRAM.fullmatch(name):
            yield Invocation(tuple(words[i + 1:]), tuple(sorted(base.items())), w)
        elif PYTHON_PROGRAM.fullmatch(name):
            got = _python_module(words[i:])
            if got is not None:
                kind, what, rest = got
                if kind == "m" and PYTEST_MODULE.fullmatch(what):
                    yield Invocation(tuple(rest), tuple(sorted(base.items())), f"{w} -m {what}")
                elif kind == "c" and MENTIONS_PYTEST.search(what):
                    yield Invocation(None, tuple(sorted(base.items())), f"{w} -c (inline code naming pytest)")
        i += 1


def _preparse_plugins(args: list[str]) -> list[str]:
    """The `-p` values pytest's pre-scan finds (PytestPluginManager.consider_preparse: every argument, even
    after `--`)."""
    out, i = [], 0
    while i < len(args):
        opt = args[i]
        i += 1
        if opt == "-p":
            if i < len(args):
                out.append(args[i].strip())
                i += 1
        elif opt.startswith("-p"):
            out.append(opt[2:].strip())
    return out


@dataclass(frozen=True)
class Seen:
    """What pytest would see: option string -> the values it was given (True for a flag), or an error."""

    options: dict[str, list[str]]
    error: str | None = None


def read(inv: Invocation, wanted: tuple[str, ...]) -> Seen:
    """Which of the options in `wanted` (option strings, any alias) this invocation sets, and to what."""
    if inv.args is None:
        return Seen({}, f"{inv.how}: its pytest options cannot be read")
    env = dict(inv.env)
    args = list(inv.args)
    addopts = env.get("PYTEST_ADDOPTS", "")
    if addopts:
        try:
            args = shlex.split(addopts) + args
        except ValueError as exc:
            return Seen({}, f"PYTEST_ADDOPTS cannot be split ({exc})")
    files = [a for a in args if a.startswith("@")]
    if files:
        return Seen({}, f"pytest would read more options from the file {files[0][1:]!r}, which the guard "
                        "cannot see")
    seen: dict[str, list[str]] = {}
    plugins = _preparse_plugins(args) + [p.strip() for p in env.get("PYTEST_PLUGINS", "").split(",") if p.strip()]
    got = _pytest_parser()
    if got is None:
        return _scan(args, wanted, plugins)
    parser, defaults, names = got
    try:
        ns, _unknown = parser.parse_known_and_unknown_args(args, namespace=copy.copy(defaults))
    except BaseException as exc:  # noqa: BLE001 - pytest raises UsageError (and argparse may exit)
        msg = " ".join(str(exc).split())[-160:]
        return Seen({}, f"pytest's parser refuses these arguments ({msg})")
    for opt in wanted:
        dest = names.get(opt)
        if dest is None:
            continue
        if dest == "plugins":
            values = [*getattr(ns, "plugins", []), *plugins]
        else:
            value, default = getattr(ns, dest, None), getattr(defaults, dest, None)
            if value == default:
                continue
            values = value if isinstance(value, list) else [value]
        if values:
            seen[opt] = [v if isinstance(v, str) else "true" for v in values]
    return Seen(seen)


def _scan(args: list[str], wanted: tuple[str, ...], plugins: list[str]) -> Seen:
    """Without pytest's parser: a token scan that may over-count (`-xk` counts as -k, values are not split
    from flags) but never misses a listed option before `--`."""
    seen: dict[str, list[str]] = {}
    before = args[:args.index("--")] if "--" in args else args
    for opt in wanted:
        if opt == "-p":
            if plugins:
                seen[opt] = plugins
            continue
        spellings = next((group for group in FALLBACK_ALIASES if opt in group), (opt,))
        for a in before:
            for o in spellings:
                long_hit = o.startswith("--") and (a == o or a.startswith(o + "="))
                short_hit = len(o) == 2 and a.startswith("-") and not a.startswith("--") and o[1] in a[1:]
                if long_hit or short_hit:
                    seen.setdefault(opt, []).append(a)
    return Seen(seen)
