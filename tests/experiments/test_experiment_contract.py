"""Every registered experiment gets a smoke test for free: its quick grid is well formed,
one cell runs and reports the reserved metrics, and its report section renders."""

from __future__ import annotations

import pytest

from alignlab.core import registry, runner
from alignlab.core.record import RESERVED_METRICS, code_version
from alignlab.reports import html

EXPERIMENTS = registry.names("experiment")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_card_and_configs(name):
    cls = registry.get("experiment", name)
    assert cls.title and cls.summary and cls.source, f"{name} needs a title, summary and source"
    default, quick = cls.Config(), cls.Config.quick()
    exp = cls(quick)
    cells = exp.cells()
    assert cells, "the quick grid is empty"
    hashes = [runner.cell_hash(name, c) for c in cells]
    assert len(set(hashes)) == len(hashes), "two cells of the quick grid are identical"
    assert len(cls(default).cells()) >= len(cells)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_one_quick_cell_runs_and_renders(name, tmp_path):
    cls = registry.get("experiment", name)
    params = cls(cls.smoke_config()).cells()[0]
    task = runner.Task(name, params, runner.cell_hash(name, params), 0, code_version(), str(tmp_path), "t", "local")
    record = runner.execute(task)
    assert record.status == "ok", record.traceback
    assert set(RESERVED_METRICS) <= set(record.metrics), f"{name} must report specified, intended and gap"
    again = runner.execute(task)
    assert again.metrics == record.metrics, "the same seed must give the same metrics"
    section = html.experiment_section(name, [record])
    assert f'data-experiment="{name}"' in section
