"""Every registered technique, and every compatible technique x experiment pair, gets its smoke test for
free: the card and config are documented, and one technique cell of each pair runs and pairs with its
baseline."""

from __future__ import annotations

import dataclasses
import math

import pytest

from alignlab.core import registry, runner
from alignlab.core.config import field_docs
from alignlab.core.experiment import TECHNIQUE_KEY
from alignlab.core.paired import base_key
from alignlab.core.record import code_version
from alignlab.core.technique import SLOTS, make_technique

TECHNIQUES = registry.names("technique")
PAIRS = [(e, t) for e in registry.names("experiment") for t in TECHNIQUES
         if registry.get("technique", t).slot in registry.get("experiment", e).slots]


@pytest.mark.parametrize("name", TECHNIQUES)
def test_card_and_config(name):
    cls = registry.get("technique", name)
    assert cls.slot in SLOTS, f"{name}: slot {cls.slot!r} is not one of {list(SLOTS)}"
    assert cls.title and cls.summary and cls.source, f"{name} needs a title, summary and source"
    docs = field_docs(cls.Config)
    for f in dataclasses.fields(cls.Config):
        assert docs.get(f.name), f"{name}: config field {f.name} has no docstring"
    tech = make_technique(name)
    assert make_technique(tech.spec).spec == tech.spec  # the canonical spec round-trips
    for args in (*cls.matrix_specs, *([cls.smoke_args] if cls.smoke_args else [])):
        make_technique(f"{name}({args})")


def test_every_technique_fits_some_experiment():
    fits = {t for _, t in PAIRS}
    assert set(TECHNIQUES) <= fits, f"techniques no experiment exposes a slot for: {set(TECHNIQUES) - fits}"


@pytest.mark.parametrize("experiment,technique", PAIRS)
def test_one_technique_cell_runs_and_pairs(experiment, technique, tmp_path):
    cls = registry.get("experiment", experiment)
    smoke = registry.get("technique", technique).smoke_args
    spec = make_technique(f"{technique}({smoke})" if smoke else technique).spec
    cell = None
    for config in (cls.smoke_config(), cls.Config.quick(), cls.Config()):
        grid = cls(dataclasses.replace(config, techniques=(spec,))).grid()
        treated = [p for p in grid if p.get(TECHNIQUE_KEY) == spec]
        if treated:
            cell = treated[0]
            break
    if cell is None:  # e.g. an off-policy target on an experiment whose grids hold no on-policy learner
        pytest.skip(f"{technique} supports no cell of {experiment}'s smoke, quick or default grid")
    bases = [p for p in grid if TECHNIQUE_KEY not in p and base_key(p) == base_key(cell)]
    assert len(bases) == 1, "a technique cell must have exactly one baseline partner"
    task = runner.Task(experiment, cell, runner.cell_hash(experiment, cell), 0, code_version(), str(tmp_path), "t",
                       "local")
    record = runner.execute(task)
    assert record.status == "ok", record.traceback
    outcome = cls().outcome(record)
    assert set(outcome) == {"intended", "capability"} and all(math.isfinite(v) for v in outcome.values())
