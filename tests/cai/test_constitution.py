"""Constitution files: the bundled ones, alignlab's TOML with one error naming file, line and field, and the
llm-swarm JSON layout read unchanged (a small file of that shape written here)."""

from __future__ import annotations

import json

import pytest

from alignlab.cai import constitution as c
from alignlab.cai.constitution import ConstitutionError
from tests.conftest import run_cli

GOOD = """name = "mine"
description = "A test constitution."

[[principles]]
name = "harm"
critique = "Is it harmful?"
revision = "Make it harmless."

[[principles]]
name = "honest"
critique = "Is it false?"
revision = "Make it true."

[[comparisons]]
name = "harmless"
text = "Which is less harmful?"

[[examples]]
prompt = "P"
response = "R"
principle = "honest"
critique = "C"
revision = "V"
"""


def test_bundled_constitutions():
    assert {"default", "empty", "bad"} <= set(c.bundled_names())
    d = c.load("default")
    assert len(d.principles) >= 4 and d.comparisons and d.examples
    assert all(len(x) == 6 for x in d.examples)
    e = c.load("empty")
    assert not e.principles and not e.comparisons and e.questions == (c.GENERIC_COMPARISON,)
    bad = c.load("bad")
    assert "refus" in bad.principles[0].revision.lower() or "refus" in bad.principles[0].critique.lower()
    assert d.digest != bad.digest


def test_toml_round_trip(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text(GOOD)
    k = c.load(f)
    assert [p.name for p in k.principles] == ["harm", "honest"]
    assert k.questions == ("Which is less harmful?",)
    ex = k.examples[0]
    assert [m["role"] for m in ex] == ["user", "assistant"] * 3
    assert ex[2]["content"] == "CritiqueRequest: Is it false?" and ex[5]["content"] == "Revision: V"


def _line(text: str, needle: str, nth: int = 0) -> int:
    lines = [i + 1 for i, ln in enumerate(text.splitlines()) if needle in ln]
    return lines[nth]


@pytest.mark.parametrize("edit,field,line_of", [
    (lambda t: t.replace('critique = "Is it false?"\n', ""), "principles[2].critique: missing",
     lambda t: _line(t, "[[principles]]", 1)),
    (lambda t: t.replace('revision = "Make it true."', 'revision = 3'), "principles[2].revision: must be a string",
     lambda t: _line(t, "revision = 3")),
    (lambda t: t.replace('name = "honest"', 'name = "harm"'), "principles[2].name: duplicate",
     lambda t: _line(t, 'name = "harm"', 1)),
    (lambda t: t.replace('principle = "honest"', 'principle = "nope"'), "examples[1].principle: 'nope' is not",
     lambda t: _line(t, 'principle = "nope"')),
    (lambda t: t.replace('text = "Which is less harmful?"', 'txt = "x"'), "comparisons[1].txt: unknown key",
     lambda t: _line(t, 'txt = "x"')),
    (lambda t: t.replace('description = "A test constitution."', 'description = ""'), "description: must not be",
     lambda t: 2),
    (lambda t: "extra = 1\n" + t, "extra: unknown key", lambda t: 1),
    (lambda t: t.replace('name = "mine"', 'name = "Mine Two"'), "name: 'Mine Two' is not a name", lambda t: 1),
    (lambda t: t.replace('[[comparisons]]', '[[comparisons]\n'), "not valid TOML",
     lambda t: _line(t, "[[comparisons]")),
])
def test_toml_errors_name_file_line_field(tmp_path, edit, field, line_of):
    text = edit(GOOD)
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConstitutionError) as err:
        c.load(f)
    msg = str(err.value)
    assert msg.startswith(f"{f}:{line_of(text)}"), msg
    assert field in msg and "\n" not in msg


def _swarm(path, **over):
    data = {"constitutions": [{"critic": "Is the response harmful?", "revision": "Rewrite it harmlessly."},
                              {"critic": "Is it rude?", "revision": "Rewrite it politely."}],
            "system_chat": [[{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"},
                             {"role": "user", "content": "Is the response harmful?"},
                             {"role": "assistant", "content": "It is fine."},
                             {"role": "user", "content": "Rewrite it harmlessly."},
                             {"role": "assistant", "content": "A."}]]}
    data.update(over)
    path.write_text(json.dumps(data, indent=2))
    return path


def test_llm_swarm_layout_read_unchanged(tmp_path):
    k = c.load(_swarm(tmp_path / "constitution_anthropic.json"))
    assert [p.name for p in k.principles] == ["principle-1", "principle-2"]
    assert k.principles[1].critique == "Is it rude?" and k.principles[1].revision == "Rewrite it politely."
    assert k.examples[0][3] == {"role": "assistant", "content": "It is fine."}
    assert k.questions == (c.GENERIC_COMPARISON,)


def test_llm_swarm_errors(tmp_path):
    f = _swarm(tmp_path / "x.json", constitutions=[{"critic": "ok", "revision": "ok"}, {"critic": ""}])
    with pytest.raises(ConstitutionError, match=r"x\.json:\d+: constitutions\[2\]\.critic: must be"):
        c.load(f)
    f = _swarm(tmp_path / "y.json", system_chat=[[{"role": "robot", "content": "x"}]])
    with pytest.raises(ConstitutionError, match=r"system_chat\[1\]\[1\]: each message needs a role"):
        c.load(f)
    (tmp_path / "z.json").write_text('{"constitutions": [\n')
    with pytest.raises(ConstitutionError, match=r"z\.json:2: not valid JSON"):
        c.load(tmp_path / "z.json")
    with pytest.raises(ConstitutionError, match="unknown constitution 'nope'; valid: bad, default, empty"):
        c.load("nope")


def test_cli_check(tmp_path):
    good = tmp_path / "mine.toml"
    good.write_text(GOOD)
    ok = run_cli("cai", "check", str(good))
    assert ok.returncode == 0 and "mine: 2 principles, 1 comparison principles" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('critique = "Is it false?"\n', ""))
    before = bad.read_bytes()
    res = run_cli("cai", "check", str(bad))
    assert res.returncode == 2, res.stdout + res.stderr
    out = (res.stdout + res.stderr).strip()
    assert "Traceback" not in out and len(out.splitlines()) == 1
    assert f"{bad}:9: principles[2].critique: missing (each principles table needs" in out
    assert bad.read_bytes() == before
