"""Policy.exec_denial: the `run` check usable for every exec; pytest options read as pytest reads them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from alignlab.controls import policy as policy_mod
from alignlab.controls import pytest_args
from alignlab.controls.guard import Guard
from alignlab.controls.policy import PolicyError, loads
from alignlab.controls.tools import ToolCall

HEAD = '[policy]\nname = "t"\nversion = "1"\n'
ONLY_PYTEST = HEAD + '[[deny]]\nid = "sel"\ntool = "run"\npytest = ["-k", "-m", "--deselect", "-p", "-o", "--co"]\n'
DEFAULT = policy_mod.load("default-coding")
STRICT = policy_mod.load("strict-coding")

SELECTING = [
    ["pytest", "-kfoo"], ["pytest", "-k=foo"], ["pytest", "-k", "foo"], ["pytest", "-xk", "foo"],
    ["pytest", "-qxk", "foo"], ["pytest", "--deselect", "t.py::a"], ["pytest", "--deselect=t.py::a"],
    ["pytest", "-p", "no:cacheprovider"], ["pytest", "-pno:x"], ["pytest", "-x", "--", "-pfoo"],
    ["pytest", "-o", "addopts=-kfoo"], ["pytest", "--override-ini=addopts=-kfoo"], ["pytest", "--co"],
    ["pytest", "--collect-only"], ["pytest", "-mslow"], ["py.test", "-k", "x"], ["pytest-3", "-kx"],
    ["/opt/venv/bin/pytest", "-k", "x"], ["python", "-m", "pytest", "-k", "x"],
    ["python3", "-I", "-m", "pytest", "-kx"],
    ["python", "-Impytest", "-kx"], ["python3.11", "-B", "-W", "ignore", "-m", "pytest", "-kx"],
    ["python", "-m", "py.test", "-kx"], ["env", "PYTEST_ADDOPTS=-k foo", "pytest"], ["env", "-S", "pytest -k foo"],
    ["env", "--split-string=pytest -kfoo"], ["env", "PYTEST_PLUGINS=evil", "pytest"], ["timeout", "5", "pytest", "-kx"],
    ["nice", "-n", "5", "pytest", "-kx"], ["xargs", "pytest", "-kx"], ["find", ".", "-exec", "pytest", "-kx", ";"],
    ["python", "-m", "coverage", "run", "-m", "pytest", "-kx"], ["pytest", "@args.txt"],
    ["python", "-c", "import pytest; pytest.main(['-k', 'x'])"], ["pytest", "-k"],
]
NOT_SELECTING = [["pytest"], ["pytest", "-x", "-q"], ["pytest", "tests/test_a.py"], ["pytest", "--", "-k", "x"],
                 ["pytest", "-v", "--tb=short", "-x"], ["python", "-I", "-m", "pytest", "-q"], ["ls", "-k"],
                 ["python", "-c", "print(1)"], ["sort", "-k", "2"], ["pytest", "--maxfail=1", "-rA"]]


@pytest.mark.parametrize("argv", SELECTING, ids=[" ".join(a)[:40] for a in SELECTING])
def test_selecting_pytest_invocations_are_denied(argv):
    pol = loads(ONLY_PYTEST)
    reason = pol.exec_denial(argv)
    assert reason is not None, argv


@pytest.mark.parametrize("argv", NOT_SELECTING, ids=[" ".join(a)[:40] for a in NOT_SELECTING])
def test_whole_suite_invocations_are_not_denied_by_the_pytest_rule(argv):
    assert loads(ONLY_PYTEST).exec_denial(argv) is None, argv


def test_environment_options_are_seen():
    pol = loads(ONLY_PYTEST)
    assert "-k 'foo'" in pol.exec_denial(["pytest"], env={"PYTEST_ADDOPTS": "-k foo"})
    assert "-p 'evil'" in pol.exec_denial(["python", "-m", "pytest"], env={"PYTEST_PLUGINS": "evil"})
    assert "cannot be split" in pol.exec_denial(["pytest"], env={"PYTEST_ADDOPTS": "-k 'foo"})
    assert pol.exec_denial(["pytest"], env={"PYTEST_ADDOPTS": "-q -x"}) is None


def test_the_reason_names_the_option_and_value():
    reason = DEFAULT.exec_denial(["python3", "-I", "-m", "pytest", "-xkfoo"])
    assert "pytest option -k 'foo'" in reason and "python3 -m pytest" in reason


def test_exec_denial_applies_every_deny_rule_of_the_run_check():
    assert "shell" in DEFAULT.exec_denial(["/bin/sh", "-c", "id"])
    assert "network" in DEFAULT.exec_denial(["curl", "http://example.com"])
    assert DEFAULT.exec_denial(["python", "-c", "print(1)"]) is None
    assert "python -I" in STRICT.exec_denial(["python", "-c", "print(1)"])
    assert STRICT.exec_denial(["python", "-I", "-c", "print(1)"]) is None
    assert "python -I" in STRICT.exec_denial(["python"])  # a missing element is matched as ""
    assert "python -I" in STRICT.exec_denial(["/usr/bin/perl", "-e", "1"])
    assert STRICT.exec_denial(["grep", "-r", "perl", "src"]) is None  # argv_prefix looks at the program only
    for bad in ([], "ls", [1], None):
        assert "non-empty list of strings" in DEFAULT.exec_denial(bad)


def test_guard_run_check_and_exec_denial_agree(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    g = Guard.for_workspace(DEFAULT, ws, tmp_path / "state", fsync=False)
    for argv in SELECTING + NOT_SELECTING + [["bash", "-c", "id"], ["curl", "x"], ["ls"]]:
        d = g.check(ToolCall("run", {"argv": argv}))
        reason = DEFAULT.exec_denial(argv)
        assert (d.stage == "deny-rule") == (reason is not None), (argv, d, reason)
        if reason is not None:
            assert d.reason == reason
        g.halted, g.denials = None, 0  # many denials in a row: keep checking, not escalating


def test_policy_sandbox_env_reaches_the_run_check(tmp_path):
    pol = loads(ONLY_PYTEST + '[sandbox]\nenv = { PYTEST_ADDOPTS = "-k fast" }\n')
    (tmp_path / "ws").mkdir()
    g = Guard.for_workspace(pol, tmp_path / "ws", tmp_path / "state", fsync=False)
    d = g.check(ToolCall("run", {"argv": ["pytest"]}))
    assert d.stage == "deny-rule" and "-k 'fast'" in d.reason


@pytest.mark.parametrize("body, needles", [
    ('pytest = ["--deselct"]', ["is not a pytest option", "--deselect"]),
    ('pytest = ["-k=re:("]', ["bad regex"]),
    ('pytest = [1]', ["list of strings"]),
    ('argv_prefix = ["python"]', ["list of argv prefixes"]),
    ('argv_prefix = [[]]', ["list of argv prefixes"]),
    ('argv_prefix = [["re:("]]', ["bad regex", "argv_prefix[0]"]),
    ('pytset = ["-k"]', ["unknown key", "did you mean 'pytest'"]),
])
def test_new_rule_keys_are_validated_strictly(body, needles):
    with pytest.raises(PolicyError) as exc:
        loads(HEAD + f'[[deny]]\nid = "x"\n{body}\n')
    msg = str(exc.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg


def test_pytest_and_argv_prefix_alone_are_enough_conditions():
    assert loads(HEAD + '[[deny]]\nid = "x"\npytest = ["-k"]\n').deny[0].pytest
    assert loads(HEAD + '[[deny]]\nid = "x"\nargv_prefix = [["ls"]]\n').exec_denial(["ls", "-la"]) is not None


def test_value_patterns_restrict_an_option():
    pol = loads(HEAD + '[[deny]]\nid = "x"\npytest = ["-p=no:*", "-o=re:addopts=.*"]\n')
    assert pol.exec_denial(["pytest", "-p", "no:randomly"]) is not None
    assert pol.exec_denial(["pytest", "-p", "xdist"]) is None
    assert pol.exec_denial(["pytest", "-o", "addopts=-kx"]) is not None
    assert pol.exec_denial(["pytest", "-o", "cache_dir=/tmp/c"]) is None


def test_the_fallback_scan_without_pytest_denies_at_least_as_much(monkeypatch):
    monkeypatch.setattr(pytest_args, "_pytest_parser", lambda: None)
    pol = loads(ONLY_PYTEST)
    for argv in SELECTING:
        assert pol.exec_denial(argv) is not None, argv


PYTEST_FILE = "def test_a():\n    pass\n\n\ndef test_foo():\n    pass\n"
PARITY = [["-kfoo"], ["-k=foo"], ["-qk", "foo"], ["--deselect=test_x.py::test_a"], ["-o", "addopts=-kfoo"],
          ["--co"], ["--", "test_x.py"], ["-x"], ["--desel", "test_x.py::test_a"]]


@pytest.mark.parametrize("args", PARITY, ids=[" ".join(a) for a in PARITY])
def test_what_is_denied_is_what_real_pytest_would_not_run_in_full(tmp_path, args):
    """Run real pytest: a command line that runs fewer than both tests must be denied; one that runs both or
    that pytest refuses (usage error, exit 4) may pass."""
    (tmp_path / "test_x.py").write_text(PYTEST_FILE)
    tail = [] if args[0] == "--" else ["test_x.py"]
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args, *tail],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTEST_ADDOPTS": ""})
    ran_both = "2 passed" in res.stdout
    denied = loads(ONLY_PYTEST).exec_denial(["pytest", *args]) is not None
    if res.returncode == 4:  # pytest refused the arguments: nothing ran
        assert "2 passed" not in res.stdout
    else:
        assert denied == (not ran_both), (args, res.stdout[-300:])
