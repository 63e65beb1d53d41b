"""Policy files: strict validation with one clear message, glob semantics, bundled policy, fuzzing."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alignlab.controls import policy as P
from alignlab.controls.policy import PolicyError, glob_to_regex, loads

HEAD = '[policy]\nname = "t"\nversion = "1"\n'


def err(text: str, fmt: str = "toml") -> str:
    with pytest.raises(PolicyError) as info:
        loads(text, fmt, source="t.toml")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("policy t.toml: ")
    return msg


def test_minimal_policy_and_version_binds_exact_text():
    a, b = loads(HEAD), loads(HEAD + "\n")
    assert a.name == "t" and a.default == "allow"
    assert a.version.startswith("t@1+") and a.version != b.version  # any edit changes the version


@pytest.mark.parametrize("text, needles", [
    (HEAD + "[budgets]\nmax_call = 3\n",
     ["[budgets]", "unknown key 'max_call'", "did you mean 'max_calls'", "valid keys"]),
    ("[policy]\nname='t'\nversion='1'\nbogus=1\n", ["unknown key 'bogus'", "valid keys: name, version"]),
    ("[policy]\nname = 't'\n", ["missing required key 'version'"]),
    (HEAD + "[budgets]\nmax_calls = 'ten'\n", ["[budgets].max_calls", "positive integer", "'ten' (string)"]),
    (HEAD + "[budgets]\nmax_calls = -1\n", ["must be positive"]),
    (HEAD + "[budgets]\nmax_calls = true\n", ["(bool)"]),
    (HEAD + "[[deny]]\ntool = 're:['\n", ["bad regex 're:['", "regex: prefix 're:'"]),
    (HEAD + "[[deny]]\ntool = 'a[b'\n", ["bad glob 'a[b'", "unterminated '['"]),
    (HEAD + "[[deny]]\ntool = 'a{b'\n", ["unmatched '{'"]),
    (HEAD + "[[deny]]\ntool = 'x}'\n", ["unmatched '}'"]),
    (HEAD + "[[deny]]\nid = 'r'\ntool = 5\n", ["[[deny]] #1 (id 'r').tool", "a string or a list of strings"]),
    (HEAD + "[[deny]]\nreason = 'x'\n", ["matches every call"]),
    (HEAD + "[[ask]]\nid='a'\ntool='x'\n[[ask]]\nid='a'\ntool='y'\n", ["duplicate rule id"]),
    (HEAD + "[tools.x]\nannotations = ['readonly']\n", ["must be one of read-only, destructive"]),
    (HEAD + "[tools.x]\nannotations = ['read-only', 'destructive']\n", ["cannot be both"]),
    (HEAD + "[tools.x]\nargs = { p = 'pathh' }\n", ["[tools.x].args.p", "must be one of str, int"]),
    (HEAD + "[sandbox]\nnetwork = 'off'\n", ["[sandbox].network", "isolate, isolate-if-available, allow"]),
    (HEAD + "[sandbox]\nhide = ['relative']\n", ["absolute paths"]),
    (HEAD + "[flow]\naction = 'allow'\n", ["[flow].action", "deny, ask"]),
    (HEAD + "[escalation]\nmonitor_threshold = 2\n", ["must be in [0, 1]"]),
    (HEAD + "[budgets.loop]\nrepeat = 9\nwindow = 3\n", ["must not exceed window"]),
    (HEAD + "[policy2]\n", ["unknown key 'policy2'"]),
    (HEAD + "[protect]\npaths = ['']\n", ["empty pattern"]),
    ("[policy\n", ["not valid TOML"]),
    (HEAD + "default = 'maybe'\n", ["[policy].default", "allow, ask, deny"]),
])
def test_validation_errors_name_the_problem_and_the_options(text, needles):
    msg = err(text)
    for n in needles:
        assert n in msg, (n, msg)


def test_yaml_policies_and_unknown_format():
    pol = loads("policy: {name: y, version: 2}\ndeny:\n  - {id: d, tool: 'rm*'}\n", "yaml")
    assert pol.deny[0].tools[0].matches("rm_rf") and pol.version.startswith("y@2+")
    assert "not valid YAML" in err("policy: [", "yaml")
    assert "unknown format" in err(HEAD, "json")


def test_load_by_path_extension_and_bundled(tmp_path):
    (tmp_path / "p.toml").write_text(HEAD)
    assert P.load(tmp_path / "p.toml").name == "t"
    (tmp_path / "p.txt").write_text(HEAD)
    with pytest.raises(PolicyError, match="unknown extension"):
        P.load(tmp_path / "p.txt")
    with pytest.raises(PolicyError, match="bundled policies: .*default-coding"):
        P.load("no-such-policy")
    assert {"default-coding", "agentdojo"} <= set(P.bundled_names())
    assert P.load("agentdojo").tools["send_money"].annotations >= {"destructive", "sink"}


@pytest.mark.parametrize("glob, yes, no", [
    ("tests/**", ["tests/a.py", "tests/x/y/z.py"], ["tests", "src/tests/a.py", "testsx/a"]),
    ("**/test_*.py", ["test_a.py", "a/b/test_c.py"], ["a/test_/x.py", "atest_a.py", "test_a.pyc"]),
    ("*.py", ["a.py"], ["a/b.py"]),
    ("src/?.py", ["src/a.py"], ["src/ab.py", "src//.py"]),
    ("**/*.{yml,yaml}", ["a.yml", "x/y.yaml"], ["a.yaml.bak"]),
    ("[!a]*", ["b", "cde"], ["abc"]),
    (".github/**", [".github/workflows/ci.yml"], ["github/x"]),
])
def test_glob_semantics(glob, yes, no):
    pat = P.Pattern.parse(glob)
    assert all(pat.matches(s) for s in yes), glob
    assert not any(pat.matches(s) for s in no), glob


def test_default_coding_policy_protects_tests_and_ci():
    coding_policy = P.load("default-coding")
    for p in ["tests/test_x.py", "pkg/tests/a.py", "test_a.py", "a/conftest.py", ".github/workflows/ci.yml",
              ".gitlab-ci.yml", "web/x.test.ts", ".git/config", "pytest.ini"]:
        assert coding_policy.is_protected(p), p
    for p in ["src/app.py", "calc/stats.py", "README.md", "docs/testing.md"]:
        assert not coding_policy.is_protected(p), p
    assert coding_policy.sandbox.network == "isolate"


# ----------------------------------------------------------------------------- fuzzing
toml_scalars = st.one_of(st.integers(-5, 5), st.booleans(), st.text(string.printable, max_size=8),
                         st.floats(allow_nan=False, allow_infinity=False, width=32))
keys = st.sampled_from(["policy", "name", "version", "deny", "ask", "allow", "tool", "args", "budgets", "max_calls",
                        "per_tool", "loop", "repeat", "window", "flow", "sinks", "untrusted", "sandbox", "network",
                        "escalation", "max_denials", "tools", "annotations", "protect", "paths", "x", "default"])
tree = st.recursive(toml_scalars | st.lists(toml_scalars, max_size=3),
                    lambda kids: st.dictionaries(keys, kids, max_size=4) | st.lists(kids, max_size=3), max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, tree, max_size=6))
def test_fuzz_validate_never_crashes(data):
    data.setdefault("policy", {"name": "f", "version": "1"})
    try:
        pol = P.validate(data, "0" * 64)
    except PolicyError as exc:
        assert "\n" not in str(exc)
    else:
        assert pol.name == data["policy"]["name"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_policy_text_never_crashes(text):
    for fmt in ("toml", "yaml"):
        try:
            loads(text, fmt)
        except PolicyError:
            pass


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=string.ascii_letters + "*?[]{},!/.\\-^$()|+", max_size=20))
def test_fuzz_glob_translation_compiles_or_raises_valueerror(glob):
    try:
        rx = glob_to_regex(glob)
    except ValueError:
        return
    re.compile(rx)  # a translated glob is always a valid regex


def test_reversed_range_in_a_glob_is_a_clear_error():
    """Found by the fuzz test above: '[?-/]' is a reversed range, which the regex engine refuses."""
    with pytest.raises(ValueError, match="bad character class"):
        glob_to_regex("[?-/]")
    assert re.fullmatch(glob_to_regex("[a-c]*.py"), "b_x.py")
