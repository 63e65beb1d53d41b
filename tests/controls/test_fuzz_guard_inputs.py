"""Fuzzing what an operator (or an attacker who edits files) can hand the guard: policy data and text, globs
against paths, and the `guard` / `audit` command lines. Nothing may raise anything but a one-line error, and
nothing may hang (each example has a deadline)."""

from __future__ import annotations

import math
import re
import string
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alignlab.controls import policy as P
from alignlab.controls.policy import GlobMachine, Pattern, PolicyError, glob_to_regex

FAST = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

# ----------------------------------------------------------------------------- policy data
nasty_numbers = st.sampled_from([math.nan, math.inf, -math.inf, 0, -1, 0.0, 1e308, 2 ** 63, 2 ** 64, -(2 ** 63),
                                 10 ** 30, 1, 3, 0.5, True])
nasty_text = st.sampled_from(["", "/", "//", "/tmp/..", "/root", "**/" * 300 + "x", "[policy]", "[bold]x[/bold]",
                              "a\nb", "\x1b[2J", "re:(a+)+$", "re:[", "{a,{b,c}}", "{" * 40 + "}" * 40, "LD_PRELOAD",
                              "A=B", "isolate", "allow", "confine", "none", "deny", "ask", "read-only", "x\x00y",
                              "1.5", "PATH"])
scalars = nasty_numbers | nasty_text | st.text(string.printable, max_size=10) | st.booleans()
keys = st.sampled_from(["policy", "name", "version", "default", "deny", "ask", "allow", "tool", "args", "budgets",
                        "max_calls", "per_tool", "loop", "repeat", "window", "wall_time_s", "flow", "sinks",
                        "untrusted", "action", "min_atom", "sandbox", "network", "filesystem", "timeout_s",
                        "memory_mb", "max_output_bytes", "max_file_bytes", "env", "env_passthrough", "hide",
                        "escalation", "max_denials", "monitor_threshold", "tools", "annotations", "protect", "paths",
                        "reason", "id", "x"]) | nasty_text
tree = st.recursive(scalars | st.lists(scalars, max_size=3),
                    lambda kids: st.dictionaries(keys, kids, max_size=4) | st.lists(kids, max_size=3), max_leaves=16)
SECTIONS = ("tools", "deny", "ask", "allow", "protect", "budgets", "flow", "escalation", "sandbox")


@FAST
@given(st.dictionaries(st.sampled_from(SECTIONS), tree, max_size=4), tree)
def test_fuzz_validate_gives_a_policy_or_one_line(data, head):
    data["policy"] = {"name": "f", "version": "1"} if not isinstance(head, dict) else {"name": "f", "version": 1,
                                                                                      **head}
    try:
        pol = P.validate(data, "0" * 64, source="f.toml")
    except PolicyError as exc:
        msg = str(exc)
        assert "\n" not in msg and "\x1b" not in msg and msg.startswith("policy f.toml: ") and len(msg) < 2000
        return
    sb = pol.sandbox  # whatever was accepted is finite, bounded and does not uncover `/`
    for x in (sb.timeout_s, sb.memory_mb, sb.max_output_bytes, sb.max_file_bytes):
        assert math.isfinite(x) and 0 < x <= 2 ** 62
    assert "/" not in sb.hide and not any(k.startswith("LD_") for k in [*sb.env, *sb.env_passthrough])
    for p in pol.protect:  # every accepted pattern answers at once on a long adversarial path
        started = time.monotonic()
        p.matches("a/" * 500 + "b")
        assert time.monotonic() - started < 1.0


toml_lines = st.sampled_from([
    "[policy]", "name = 't'", "version = '1'", "version = 1", "[sandbox]", "timeout_s = nan", "timeout_s = inf",
    "timeout_s = 1e400", "memory_mb = 99999999999999999", "hide = ['/']", "hide = ['/x']", "[[deny]]", "tool = 'x'",
    "tool = '" + "**/" * 200 + "x'", "[protect]", "paths = ['**/t/**']", "env = { LD_PRELOAD = 'a' }",
    "a = [[[[[[1]]]]]]",
    "[budgets]", "max_calls = 0", "loop = { repeat = 3, window = 2 }", "[tools.'x\\u001b']", "annotations = ['sink']",
    "x = " + "[" * 600 + "]" * 600, "name = '\\u202e'", "\x00", "= =", "[policy.x]",
])


@FAST
@given(st.lists(toml_lines, max_size=10), st.sampled_from(["toml", "yaml"]))
def test_fuzz_policy_text_gives_a_policy_or_one_line(lines, fmt):
    text = "\n".join(lines)
    if fmt == "yaml":
        text = text.replace(" = ", ": ")
    try:
        P.loads(text, fmt, source="f")
    except PolicyError as exc:
        assert "\n" not in str(exc)


# ----------------------------------------------------------------------------- globs
glob_chars = st.text(alphabet="ab/*?{},[]!.", max_size=12)
paths = st.text(alphabet="ab/.", max_size=12)


@settings(max_examples=400, deadline=1000)
@given(glob_chars, st.lists(paths, min_size=1, max_size=5))
def test_fuzz_glob_machine_agrees_with_the_regex_translation(glob, subjects):
    try:
        pat = Pattern.parse(glob)
    except ValueError:
        return
    rx = re.compile(glob_to_regex(glob), re.DOTALL)
    for s in subjects:
        assert pat.matches(s) == (rx.fullmatch(s) is not None), (glob, s)
    union = GlobMachine(glob, "b/**")
    for s in subjects:
        assert union.matches(s) == (pat.matches(s) or s.startswith("b/"))


@settings(max_examples=60, deadline=1000)
@given(st.lists(st.sampled_from(["**/", "*", "a", "/", "**", "?", "{a,*}"]), min_size=1, max_size=60),
       st.integers(1, 2000))
def test_fuzz_adversarial_globs_stay_linear(parts, n):
    pat = Pattern.parse("".join(parts))
    pat.matches("a/" * n + "c")  # the deadline is the assertion


# ----------------------------------------------------------------------------- the command line
ARG_TOKENS = ["guard", "run", "rollback", "checkpoints", "audit", "verify", "show", "--", "-w", "--workspace",
              "--state-dir", "--timeout", "--audit-key", "--anchor", "--log", "--tail", "--kind", "--json",
              "--approver", "--recover-audit", "--path", "nan", "inf", "-1", "0", "1e309", "2", "default-coding",
              "no-such-policy", "{fifo}", "{ws}", "{ws}/p.toml", "{outside}", "{outside}/bad.toml", "true", "python",
              "-c", "print('\\x1b[2J')", "\udcff", "[policy]", "[bold]", "\x1b[2J", "cp-000001", "deny", "terminal",
              "{outside}/state", "{ws}/state", "/nonexistent", ""]


SUBCOMMANDS = [["guard", "run"], ["guard", "rollback"], ["guard", "checkpoints"], ["audit", "verify"],
               ["audit", "show"], []]
OPTIONS = ["-w", "--state-dir", "--timeout", "--audit-key", "--anchor", "--log", "--tail", "--approver", "--kind"]
VALUES = [t for t in ARG_TOKENS if t not in OPTIONS]
option_pairs = st.lists(st.tuples(st.sampled_from(OPTIONS), st.sampled_from(VALUES)).map(list), max_size=3).map(
    lambda pairs: [x for p in pairs for x in p])
guard_run = st.tuples(option_pairs, st.sampled_from(["default-coding", "{ws}/p.toml", "{outside}/bad.toml",
                                                     "{fifo}", "no-such-policy", "[policy]"]),
                      st.lists(st.sampled_from(["true", "python", "-c", "print('\x1b[2J')", "\udcff", "--timeout"]),
                               min_size=1, max_size=3)).map(lambda t: ["guard", "run", *t[0], t[1], "--", *t[2]])
CLI_ARGS = guard_run | st.tuples(st.sampled_from(SUBCOMMANDS), option_pairs,
                                 st.lists(st.sampled_from(ARG_TOKENS), max_size=4)).map(lambda t: t[0] + t[1] + t[2])


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("fuzz-cli")
    (root / "ws").mkdir()
    (root / "out").mkdir()
    (root / "ws" / "p.toml").write_text("[policy]\nname = 'w'\nversion = '1'\n")
    (root / "out" / "bad.toml").write_text("[policy]\nname = 'b'\nversion = '1'\n[sandbox]\nhide = ['/']\n")
    os.mkfifo(root / "out" / "fifo.toml")
    return root


@settings(max_examples=40, deadline=20_000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(CLI_ARGS)
def test_fuzz_cli_arguments_exit_with_a_status_never_a_traceback(arena, capsys, monkeypatch, tokens):
    from alignlab.cli.main import main

    monkeypatch.setenv("ALIGNLAB_GUARD_STATE", str(arena / "out" / "state"))
    monkeypatch.chdir(arena / "out")
    argv = [t.format(ws=arena / "ws", outside=arena / "out", fifo=arena / "out" / "fifo.toml") for t in tokens]
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    _, err = capsys.readouterr()
    assert isinstance(code, int) or code is None, code
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        assert len(err.strip().splitlines()) <= 1 or "Usage" in err, (argv, err)
