"""weak-to-strong-v0: cells, metrics and the PGR table."""

from __future__ import annotations

import pytest

from alignlab.core.errors import ConfigError
from alignlab.core.record import RunRecord
from alignlab.experiments.weak_to_strong import WeakToStrong, WeakToStrongConfig


def test_config_errors():
    with pytest.raises(ConfigError, match="valid: digits, tabular"):
        WeakToStrongConfig(tasks=("imagenet",))
    with pytest.raises(ConfigError, match="aux_alpha"):
        WeakToStrongConfig(aux_alpha=2.0)


def test_cell_and_table(tmp_path):
    exp = WeakToStrong(WeakToStrongConfig(tasks=("tabular",), weak_epochs=5, strong_epochs=4, hidden=32))
    params = exp.cells()[0]
    records = [RunRecord("weak-to-strong-v0", params, "h", s, "ok", "t", exp.run_cell(params, s, tmp_path).metrics)
               for s in (0, 1)]
    m = records[0].metrics
    assert m["specified"] == m["w2s_agreement"] and m["intended"] == m["w2s"]
    row = exp.tables(records)[0].rows[0]
    assert row[0] == "tabular" and row[1] == 2
    assert "recovers" in exp.findings(records)[0]
