"""debate-v0: the judge alone and after debate, the search check, the report section."""

from __future__ import annotations

import dataclasses

import pytest

from alignlab.core.errors import ConfigError
from alignlab.core.record import RunRecord
from alignlab.experiments.debate import Debate, DebateConfig


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="ks"):
        DebateConfig(ks=(0, 2))
    with pytest.raises(ConfigError, match="pool"):
        DebateConfig(ks=(6,), pool=4)
    with pytest.raises(ConfigError, match="images"):
        DebateConfig(images=0)


def test_cells_choose_exact_then_search():
    cells = Debate(DebateConfig()).cells()
    assert [(c["k"], c["method"], c["search_check"]) for c in cells] == [
        (2, "exact", False), (4, "exact", True), (6, "search", False)]


def test_debate_cell_and_report(tmp_path):
    cfg = dataclasses.replace(DebateConfig.quick(), ks=(4,), images=6, judge_masks=6, judge_epochs=3)
    exp = Debate(cfg)
    records = []
    for seed in (0, 1):
        params = exp.cells()[0]
        res = exp.run_cell(params, seed, tmp_path)
        records.append(RunRecord("debate-v0", params, "h", seed, "ok", "t", res.metrics, res.data))
    m = records[0].metrics
    assert m["debate"] > m["alone"]
    assert m["check_images"] == 6 and 0 <= m["agree_lies_honest-first"] <= 1
    assert m["gap"] == pytest.approx(m["specified"] - m["intended"])
    tables = exp.tables(records)
    assert tables[0].rows[0][-1].startswith("48.2 -> 85.2") and len(tables) == 2
    assert any("raises" in f or "change" in f for f in exp.findings(records))
    assert exp.figures(records) and exp.headline(records)[1].n == 2
