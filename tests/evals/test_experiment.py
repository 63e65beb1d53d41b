"""The behavioural-evals experiment through the lab's runner, store and HTML report (tiny model)."""

from __future__ import annotations

import json

import pytest

from alignlab.core import registry, runner
from alignlab.core.errors import ConfigError
from alignlab.core.store import Store
from alignlab.evals.core import Eval
from alignlab.reports import html

pytest.importorskip("transformers")


def test_grid_runs_stores_artifacts_and_reports(tmp_path):
    from alignlab.lm.testing import cached_tiny_llama

    cls = registry.get("experiment", "behavioural-evals")
    config = cls.Config(evals=("sycophancy-answer-v0", "framing-v0"), models=(str(cached_tiny_llama()),), limit=3,
                        eval_preset="quick")
    runs = tmp_path / "runs"
    summary = runner.run(cls.registered_name, config, seeds=2, workers=1, runs_dir=runs)
    assert (summary.ok, summary.failed) == (4, 0)
    with Store(runs, readonly=True) as store:
        records = store.records(cls.registered_name)
    assert len(records) == 4
    for r in records:
        assert {"specified", "intended", "gap", "items"} <= set(r.metrics)
        assert all({"value", "lo", "hi", "n"} <= set(d) for d in r.data["metrics"].values())
        assert len(r.artifacts) == 3 and all((runs / a).is_file() for a in r.artifacts)
        page = (runs / r.artifacts[0]).read_text()
        assert page.startswith("<!DOCTYPE html>") and "assistant" in page
    section = html.experiment_section(cls.registered_name, records)
    assert "Comparison across models" in section and "Every metric of every cell" in section
    assert "transcripts.html" in section and "Refusal detector against hand labels" in section
    again = runner.run(cls.registered_name, config, seeds=2, workers=1, runs_dir=runs)
    assert again.skipped == 4 and again.ok == 0


def test_pooled_comparison_counts_each_item_once(tmp_path):
    from alignlab.experiments.behavioural_evals import _pooled
    from alignlab.core.record import RunRecord

    items = [{"id": f"i{k}", "category": "c", "suggested": "x", "status_none": "correct", "correct_none": 1.0,
              "names_suggested_none": 0.0, "status_wrong": "other", "correct_wrong": 0.0,
              "names_suggested_wrong": 1.0} for k in range(4)]
    recs = [RunRecord("behavioural-evals-v0", {"eval": "sycophancy-answer-v0", "model": "m", "eval_preset": "quick"},
                      "h", seed, "ok", "v", data={"items": items[seed:seed + 3]}) for seed in (0, 1)]
    pooled = _pooled(recs)[("sycophancy-answer-v0", "m")]
    assert pooled["agree_wrong"].n == 4 and pooled["gap"].value == 1


def test_config_is_validated():
    from alignlab.experiments.behavioural_evals import registered_evals

    cls = registry.get("experiment", "behavioural-evals")
    with pytest.raises(ConfigError, match="unknown eval") as err:
        cls.Config(evals=("no-such-eval-v0",))
    assert f"valid: {', '.join(registry.names('eval'))}" in str(err.value)
    with pytest.raises(ConfigError, match="limit"):
        cls.Config(limit=0)
    assert registered_evals() == tuple(registry.names("eval"))
    assert cls.Config().evals == cls.Config.quick().evals == registered_evals()
    assert [c["eval"] for c in cls(cls.Config.quick()).cells()] == list(registered_evals())
    assert [c["eval"] for c in cls(cls.smoke_config()).cells()][0] == "sycophancy-answer-v0"
    assert json.dumps(cls(cls.Config.quick()).cells())


def test_cell_params_are_unchanged():
    """Stored results stay valid: a cell's parameters (so its hash) are as they were."""
    cls = registry.get("experiment", "behavioural-evals")
    cells = cls(cls.Config(evals=("framing-v0",), judge="embedded")).cells()
    assert cells == [{"eval": "framing-v0", "model": "embedded", "limit": 120, "eval_preset": "default",
                      "dtype": "float32", "judge": "embedded"}]


class _DummyEval(Eval):
    title = "Test-only eval"
    summary = "Registered by a test to show that an eval joins behavioural-evals by registering alone."
    source = "tests/evals/test_experiment.py"


@pytest.fixture
def dummy_eval():
    """`_DummyEval` registered under a test-only name for one test, then removed."""
    name = "test-behavioural-evals-dummy-v0"
    registry.register("eval", name)(_DummyEval)
    try:
        yield name
    finally:
        registry._REGISTRY["eval"].pop(name, None)


def test_a_registered_eval_joins_the_experiment(dummy_eval):
    from alignlab.experiments.behavioural_evals import registered_evals

    cls = registry.get("experiment", "behavioural-evals")
    assert dummy_eval in registered_evals()
    assert dummy_eval in cls.Config().evals and dummy_eval in cls.Config.quick().evals
    assert [c["eval"] for c in cls(cls.Config(evals=(dummy_eval,))).cells()] == [dummy_eval]
    with pytest.raises(ConfigError, match=dummy_eval):  # the message lists it among the valid names
        cls.Config(evals=("no-such-eval-v0",))
