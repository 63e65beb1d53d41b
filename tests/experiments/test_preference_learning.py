"""The preference-learning experiment: its grid, a fooled-rater pair of cells, and its report."""

import dataclasses

import pytest

from alignlab.core import registry, runner
from alignlab.core.errors import ConfigError
from alignlab.core.record import code_version
from alignlab.experiments import preference_learning_report as report
from alignlab.reports import html

NAME = "preference-learning-v0"


def _cls():
    return registry.get("experiment", NAME)


def test_quick_grid_has_references_budgets_and_the_fooled_raters():
    cls = _cls()
    cells = cls(cls.Config.quick()).cells()
    for env in cls.Config.quick().envs:
        mine = [c for c in cells if c["env"] == env]
        assert {c["reward"] for c in mine} == {"true", "specified", "preferences"}
        assert sorted(c["comparisons"] for c in mine if c["reward"] == "preferences") == [25, 100, 300, 1000]
    grasp = [c["rater"] for c in cells if c["env"] == "grasp-camera-v0" and c["reward"] == "preferences"]
    assert set(grasp) == {"true", "camera", "assisted"}
    assert cls.tour


def test_bad_config_is_refused():
    cls = _cls()
    with pytest.raises(ConfigError, match="unknown envs"):
        cls.Config(envs=("no-such-env-v0",))
    with pytest.raises(ConfigError, match="coverages"):
        cls.Config(coverages=(1.5,))


def test_fooled_rater_cells_and_report(tmp_path):
    cls = _cls()
    config = dataclasses.replace(cls.Config.quick(), envs=("boat-race-v0",), comparisons=(100,),
                                 grasp_comparisons=150, coverages=(1.0,))
    keep = {("boat-race-v0", "true", None), ("boat-race-v0", "preferences", "true"),
            ("grasp-camera-v0", "specified", None), ("grasp-camera-v0", "true", None),
            ("grasp-camera-v0", "preferences", "camera"), ("grasp-camera-v0", "preferences", "assisted")}
    cells = [c for c in cls(config).cells() if (c["env"], c["reward"], c["rater"]) in keep]
    assert len(cells) == len(keep)
    records = []
    for params in cells:
        task = runner.Task(NAME, params, runner.cell_hash(NAME, params), 0, code_version(), str(tmp_path), "t",
                           "local")
        rec = runner.execute(task)
        assert rec.status == "ok", rec.traceback
        records.append(rec)
    by = {(r.config["env"], r.config["reward"], r.config["rater"]): r.metrics for r in records}
    assert by[("grasp-camera-v0", "specified", None)]["gap"] == 18  # the camera's optimum fakes every grasp
    assert by[("grasp-camera-v0", "true", None)]["gap"] == 0
    assert by[("grasp-camera-v0", "preferences", "assisted")]["gap"] <= 1
    # the camera-only rater's reward pays for occlusion; the fully covering helper's does not
    assert by[("grasp-camera-v0", "preferences", "camera")]["occlusion_pay"] > 0.3
    assert abs(by[("grasp-camera-v0", "preferences", "assisted")]["occlusion_pay"]) < 0.2
    assert "reward_correlation" in by[("boat-race-v0", "preferences", "true")]
    tables = {t.title for t in report.tables(records)}
    assert any("Label efficiency" in t for t in tables) and any("Fooled raters" in t for t in tables)
    assert len(report.figures(records)) == 2 and report.findings(records)
    section = html.experiment_section(NAME, records)
    assert "<svg" in section and "camera" in section
