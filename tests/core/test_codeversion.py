"""Code versions scoped to what a cell runs: prose edits and edits elsewhere re-run nothing,
code edits re-run exactly the cells that can run that code, `fresh` re-runs everything."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from alignlab.core import codeversion, registry, runner
from alignlab.core.store import Store

# -- hashing one module ----------------------------------------------------------------------

SOURCE = '''
"""Module docstring."""

import math  # a comment


class Thing:
    """Class docstring."""

    size: int = 3
    """Attribute docstring."""

    def area(self):
        """Method docstring."""
        return math.pi * self.size ** 2
'''


def test_prose_and_layout_do_not_change_a_module_digest():
    base = codeversion.code_digest(SOURCE)
    prose = (SOURCE.replace("Module docstring.", "Reworded, at length.\n\nWith a second paragraph.")
             .replace('"""Class docstring."""', "")
             .replace("Attribute docstring.", "Another attribute doc.")
             .replace('"""Method docstring."""', '"""Method docstring."""\n        # why: a new comment\n')
             .replace("# a comment", "# an edited comment")
             .replace("class Thing:", "\n\nclass Thing:  # trailing"))
    assert codeversion.code_digest(prose) == base


@pytest.mark.parametrize("edit", [("math.pi", "3.14"), ("size: int = 3", "size: int = 4"),
                                  ("import math", "import math, os"), ("def area", "def surface")])
def test_code_edits_change_a_module_digest(edit):
    assert codeversion.code_digest(SOURCE.replace(*edit)) != codeversion.code_digest(SOURCE)


# -- a fake plugin package, run through the runner -------------------------------------------


class FakeLab:
    """A tiny package in tmp_path: an experiment, a helper it imports, three agents (two named by
    cell parameters, one by a constant in the experiment), a technique, and a module nobody runs."""

    def __init__(self, root: Path):
        self.tag = "zz" + uuid.uuid4().hex[:8]
        self.pkg = f"fakelab_{self.tag}"
        self.dir = root / self.pkg
        self.dir.mkdir()
        t, p = self.tag, self.pkg
        self.exp = f"{t}-exp-v0"
        self.write("__init__.py", '"""A fake plugin package."""\n')
        self.write("unrelated.py", '"""Imported by nothing the experiment runs."""\n\nVALUE = 1\n')
        self.write("helper.py", '''
            """Helpers of the fake experiment."""


            def double(x):
                """Twice x."""
                return 2 * x  # the factor
            ''')
        for letter, step in (("a", 1), ("b", 2), ("c", 3)):
            self.write(f"agent_{letter}.py", f'''
                """Agent {letter}."""

                from alignlab.core.registry import register


                @register("agent", "{t}-agent-{letter}-v0")
                class Agent:
                    """Adds {step}."""

                    def act(self, x):
                        return x + {step}
                ''')
        self.write("tech.py", f'''
            """A technique."""

            from alignlab.core.registry import register


            @register("technique", "{t}-tech-v0")
            class Tech:
                def bonus(self):
                    return 10
            ''')
        self.write("exp.py", f'''
            """The fake experiment."""

            from alignlab.core import registry
            from alignlab.core.experiment import Experiment
            from alignlab.core.record import CellResult
            from alignlab.core.registry import register

            BASELINE = "{t}-agent-c-v0"


            @register("experiment", "{self.exp}")
            class FakeExperiment(Experiment):
                title = "fake"
                default_seeds = 1
                quick_seeds = 1
                cell_list = [{{"agent": "{t}-agent-a"}}, {{"agent": "{t}-agent-b"}},
                             {{"agent": "{t}-agent-a", "technique": "{t}-tech-v0(q=0.1)"}}]

                def cells(self):
                    return list(self.cell_list)

                def run_cell(self, params, seed, workdir):
                    from {p} import helper

                    x = helper.double(registry.get("agent", params["agent"])().act(seed))
                    x += registry.make("agent", BASELINE).act(0)
                    if params.get("technique"):
                        x += registry.make("technique", params["technique"].partition("(")[0]).bonus()
                    if params.get("computed"):
                        registry.get("agent", "{t}-agent-" + "b")  # a name built at run time
                    return CellResult(metrics={{"specified": float(x), "intended": float(x), "gap": 0.0}})
            ''')
        self.modules = ["exp", "agent_a", "agent_b", "agent_c", "tech"]

    def write(self, name: str, text: str) -> None:
        (self.dir / name).write_text(textwrap.dedent(text).lstrip("\n"))

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.dir / name
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new))

    def import_all(self) -> None:
        for mod in self.modules:
            importlib.import_module(f"{self.pkg}.{mod}")

    def cleanup(self) -> None:
        for table in registry._REGISTRY.values():
            for name in [n for n in table if n.startswith(self.tag)]:
                del table[name]
        for mod in [m for m in sys.modules if m == self.pkg or m.startswith(self.pkg + ".")]:
            del sys.modules[mod]


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    fake = FakeLab(tmp_path)
    fake.import_all()
    yield fake
    fake.cleanup()


def run(lab: FakeLab, runs_dir: Path, **kw) -> runner.RunSummary:
    return runner.run(lab.exp, seeds=1, workers=1, runs_dir=runs_dir, **kw)


def versions(lab: FakeLab) -> list[str]:
    cv = codeversion.CellVersions(lab.exp)
    return [cv.version(p) for p in registry.make("experiment", lab.exp).cells()]


def test_each_cell_counts_what_it_names_and_what_its_code_names(lab):
    cv = codeversion.CellVersions(lab.exp)
    t = lab.tag
    a, b, tech = (set(cv.components(p)) for p in registry.make("experiment", lab.exp).cells())
    shared = set(cv.components({}))  # what every cell counts
    assert shared >= {("experiment", lab.exp), ("agent", f"{t}-agent-c-v0")}  # the constant BASELINE
    assert not any(name.startswith(t) for _, name in shared - {("experiment", lab.exp), ("agent", f"{t}-agent-c-v0")})
    assert a == shared | {("agent", f"{t}-agent-a-v0")}
    assert b == shared | {("agent", f"{t}-agent-b-v0")}
    assert tech == a | {("technique", f"{t}-tech-v0")}
    assert len(set(versions(lab))) == 3


def test_prose_edits_and_unrelated_code_edits_keep_every_stored_cell(lab, runs_dir):
    s1 = run(lab, runs_dir)
    assert (s1.total, s1.ok, s1.skipped, s1.untracked) == (3, 3, 0, 0)
    before = versions(lab)
    lab.edit("helper.py", '"""Twice x."""', '"""Twice x, reworded\n    over two lines."""')
    lab.edit("helper.py", "# the factor", "# the factor, explained")
    lab.edit("agent_a.py", '"""Agent a."""', '"""Agent a, documented better."""')
    lab.edit("exp.py", '"""The fake experiment."""', '"""The fake experiment (new docs)."""')
    lab.edit("unrelated.py", "VALUE = 1", "VALUE = 2\n\n\ndef more():\n    return VALUE")
    assert versions(lab) == before
    s2 = run(lab, runs_dir)
    assert (s2.ok, s2.skipped) == (0, 3)


def test_a_code_edit_in_the_experiments_imports_reruns_every_cell(lab, runs_dir):
    run(lab, runs_dir)
    lab.edit("helper.py", "return 2 * x", "return 3 * x")
    importlib.reload(sys.modules[f"{lab.pkg}.helper"])
    s = run(lab, runs_dir)
    assert (s.ok, s.skipped) == (3, 0)
    with Store(runs_dir) as store:
        assert store.count() == 6  # the old records stay; the report shows the newest
        assert {r.metrics["specified"] for r in store.records()} == {6.0, 9.0, 16.0}


@pytest.mark.parametrize("module, old, new, reruns", [
    ("agent_b.py", "return x + 2", "return x + 20", [1]),   # named by one cell's parameters
    ("agent_a.py", "return x + 1", "return x + 10", [0, 2]),  # named by two cells (unversioned)
    ("tech.py", "return 10", "return 11", [2]),              # a technique spec in one cell
    ("agent_c.py", "return x + 3", "return x + 4", [0, 1, 2]),  # a constant of the experiment's code
    ("exp.py", "x += registry.make", "x -= registry.make", [0, 1, 2]),
])
def test_a_code_edit_reruns_exactly_the_cells_that_run_it(lab, runs_dir, module, old, new, reruns):
    run(lab, runs_dir)
    before = versions(lab)
    lab.edit(module, old, new)
    after = versions(lab)
    assert [i for i in range(3) if before[i] != after[i]] == reruns
    s = run(lab, runs_dir)
    assert (s.ok, s.skipped) == (len(reruns), 3 - len(reruns))


def test_a_newer_registered_version_reruns_the_cells_that_name_it_without_a_version(lab, runs_dir):
    run(lab, runs_dir)
    lab.write("agent_a1.py", f'''
        from alignlab.core.registry import register


        @register("agent", "{lab.tag}-agent-a-v1")
        class Agent:
            def act(self, x):
                return x - 1
        ''')
    importlib.invalidate_caches()
    importlib.import_module(f"{lab.pkg}.agent_a1")
    s = run(lab, runs_dir)
    assert (s.ok, s.skipped) == (2, 1)


def test_fresh_reruns_every_cell_regardless(lab, runs_dir):
    run(lab, runs_dir)
    s = run(lab, runs_dir, fresh=True)
    assert (s.ok, s.skipped) == (3, 0)
    with Store(runs_dir) as store:
        assert store.count() == 3  # replaced, not duplicated


def test_a_component_resolved_by_a_built_name_is_stored_untracked_and_reruns(lab, runs_dir, monkeypatch):
    exp_cls = registry.get("experiment", lab.exp)
    monkeypatch.setattr(exp_cls, "cell_list", exp_cls.cell_list[:1] + [{"agent": f"{lab.tag}-agent-a", "computed": 1}])
    with pytest.warns(UserWarning, match=f"agent:{lab.tag}-agent-b-v0"):
        s1 = run(lab, runs_dir)
    assert (s1.ok, s1.untracked) == (2, 1)
    with Store(runs_dir) as store:
        stray = [r for r in store.records() if codeversion.is_untracked(r.code_version)]
    assert [r.config.get("computed") for r in stray] == [1]
    with pytest.warns(UserWarning):
        s2 = run(lab, runs_dir)
    assert (s2.ok, s2.skipped, s2.untracked) == (1, 1, 1)  # only the untracked cell re-ran
    with Store(runs_dir) as store:
        assert store.count() == 2  # its record was replaced


def test_a_scoped_version_follows_code_not_prose(lab):
    v = codeversion.scoped_version([f"{lab.pkg}.helper"])
    lab.edit("helper.py", '"""Helpers of the fake experiment."""', '"""Helpers."""')
    assert codeversion.scoped_version([f"{lab.pkg}.helper"]) == v
    lab.edit("helper.py", "2 * x", "x + x")
    assert codeversion.scoped_version([f"{lab.pkg}.helper"]) != v


def test_planning_a_large_grid_is_fast(lab):
    import time

    cells = [{"agent": f"{lab.tag}-agent-{'ab'[i % 2]}", "i": i} for i in range(2000)]
    started = time.perf_counter()
    cv = codeversion.CellVersions(lab.exp)
    assert len({cv.version(p) for p in cells}) == 2
    assert time.perf_counter() - started < 5
