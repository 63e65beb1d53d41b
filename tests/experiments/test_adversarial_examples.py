"""The adversarial-examples experiment: config checks, a small grid (standard and adversarially trained) run and
its report section (curves for both norms, the clean-accuracy cost, the cross-check), a user's data file."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alignlab.core import registry
from alignlab.core.errors import ConfigError
from alignlab.core.experiment import TECHNIQUE_KEY
from alignlab.core.record import RunRecord
from alignlab.experiments.adversarial_examples import AdversarialExamplesConfig
from tests.conftest import run_cli

NAME = "adversarial-examples-v0"


def _run(config, seeds=(0,), tmp_path=None):
    exp = registry.get("experiment", NAME)(config)
    records = []
    for params in exp.grid():
        for seed in seeds:
            res = exp.run_cell(params, seed, tmp_path)
            records.append(RunRecord(NAME, params, "h", seed, "ok", "v", res.metrics, res.data))
    return exp, records


@pytest.mark.parametrize("kwargs,message", [
    (dict(ref_eps_linf=0.07), "must be one of eps_linf"),
    (dict(eps_l2=(0.5, 0.0)), "increasing order"),
    (dict(threat="l1"), "threat must be"),
    (dict(pgd_steps=0), ">= 1"),
    (dict(data="nowhere.npz"), "does not exist"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        AdversarialExamplesConfig(**kwargs)


def test_a_technique_for_another_slot_is_refused():
    with pytest.raises(ConfigError, match="does not expose"):
        registry.get("experiment", NAME)(AdversarialExamplesConfig(techniques=("quantilizer",)))


def test_the_cli_refuses_a_bad_data_file_in_one_line(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.full((10, 4), 3.0, dtype=np.float32), y=np.arange(10) % 2)
    r = run_cli("run", NAME, "--quick", "--set", f"data={bad}", runs_dir=tmp_path / "runs", timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "expected inputs scaled to [0, 1]" in r.stderr and "Traceback" not in r.stderr


def test_grid_and_report_section(tmp_path):
    config = AdversarialExamplesConfig(eps_linf=(0.0, 0.1, 0.2), eps_l2=(0.0, 0.5), pgd_steps=5, epochs=10,
                                       techniques=("adversarial-training(steps=3)",))
    exp, records = _run(config, seeds=(0, 1), tmp_path=tmp_path)
    assert sorted(bool(r.config.get(TECHNIQUE_KEY)) for r in records) == [False, False, True, True]
    std = [r for r in records if not r.config.get(TECHNIQUE_KEY)]
    at = [r for r in records if r.config.get(TECHNIQUE_KEY)]
    for r in records:
        m = r.metrics
        assert m["specified"] == m["clean"] and m["intended"] == m["pgd_linf"]
        assert m["gap"] == pytest.approx(m["clean"] - m["pgd_linf"])
        assert r.data["curves"]["l2"]["eps"] == [0.0, 0.5]
        assert m["xcheck_linf"] <= config.tolerance and m["xcheck_l2"] <= config.tolerance
    assert all(r.metrics["pgd_linf"] < r.metrics["clean"] - 0.3 for r in std)
    assert np.mean([r.metrics["pgd_linf"] for r in at]) > np.mean([r.metrics["pgd_linf"] for r in std]) + 0.2

    tables = exp.tables(records)
    assert [t.title.split(" ")[0] for t in tables] == ["Accuracy", "Accuracy", "Clean", "Cross-check:"]
    assert [row[0] for row in tables[2].rows] == ["standard", "AT L-infinity 0.1 (steps=3)"]
    svg = exp.figures(records)[0].svg
    assert "L-infinity attacks" in svg and "L2 attacks" in svg
    findings = "\n".join(exp.findings(records))
    assert "far below clean" in findings and "clean accuracy cost (alignment tax)" in findings
    assert "within the tolerance 0.03" in findings
    label, value = exp.headline(records)
    assert "PGD" in label and value.n == 2 and value.mean < 0.6


def test_a_users_tensor_file_runs_with_the_cnn(tmp_path):
    g = np.random.default_rng(0)
    y = np.arange(90) % 3
    x = np.clip(g.normal(0.2 + 0.3 * y[:, None, None], 0.1, (90, 6, 6)), 0, 1).astype(np.float32)
    path = tmp_path / "blobs.npz"
    np.savez(path, x=x, y=y)
    config = AdversarialExamplesConfig(data=str(path), arch="cnn", hidden=4, epochs=5, eps_linf=(0.0, 0.2),
                                       eps_l2=(0.0, 1.0), ref_eps_linf=0.2, ref_eps_l2=1.0, pgd_steps=3,
                                       techniques=(), cross_check=False)
    exp, (record,) = _run(config, tmp_path=tmp_path)
    assert record.config["data_digest"] != "digits"
    assert 0 <= record.metrics["intended"] <= record.metrics["specified"] <= 1
    assert "xcheck_linf" not in record.metrics
    assert dataclasses.replace(config, threat="l2").threat == "l2"
