"""amplification-v0: cells, the tree rows beside the distilled models, config errors."""

from __future__ import annotations

import pytest

from alignlab.core.errors import ConfigError
from alignlab.core.record import RunRecord
from alignlab.experiments.amplification import Amplification, AmplificationConfig


def test_config_errors():
    with pytest.raises(ConfigError, match="noises"):
        AmplificationConfig(noises=(1.5,))
    with pytest.raises(ConfigError, match="max_power"):
        AmplificationConfig(max_power=0)
    with pytest.raises(ConfigError, match="valid kinds"):
        AmplificationConfig(noise_kinds=("gaussian",))


def test_cells_and_report(tmp_path):
    exp = Amplification(AmplificationConfig(n=8, max_power=7, noises=(0.0, 0.3), rounds=4, steps=5, hidden=32,
                                            tree_repeats=20))
    cells = exp.cells()
    assert [(c["method"], c["noise"], c.get("noise_kind")) for c in cells] == [
        ("amplification", 0.0, "random"), ("amplification", 0.3, "random"), ("amplification", 0.3, "persistent"),
        ("supervised", 0.0, None)]
    records = [RunRecord("amplification-v0", c, str(i), 0, "ok", "t", exp.run_cell(c, 0, tmp_path).metrics)
               for i, c in enumerate(cells)]
    noisy = records[1].metrics
    assert noisy["tree_depth_0"] == 1.0 and noisy["tree_depth_4"] < noisy["tree_depth_1"]
    assert records[3].metrics["labels"] > 0 and records[0].metrics["labels"] == 0
    table = exp.tables(records)[0]
    assert len(table.rows) == 7 and "depth 4" in table.columns
    assert any("compound" in f for f in exp.findings(records)) and exp.figures(records)
