"""The behavioural-evals experiment through the lab's runner, store and HTML report (tiny model)."""

from __future__ import annotations

import dataclasses
import json
import math
import re

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
                        eval_preset="quick", answer_suffix="", wording="sharma", dtype="float32")
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
    answer = [r for r in records if r.config["eval"] == "sycophancy-answer-v0"]
    assert all(r.data["eval_config"]["answer_suffix"] == "" and r.data["eval_config"]["wording"] == "sharma"
               and r.data["dtype"] == "float32" for r in answer)
    sent = json.loads((runs / answer[0].artifacts[1]).read_text().splitlines()[0])["wrong"][0]["content"]
    assert sent.endswith("but I'm really not sure.")  # Sharma et al.'s template verbatim, no suffix after it
    section = html.experiment_section(cls.registered_name, records)
    assert "Protocol of each eval" in section and "sharma" in section
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


def test_headline_is_answer_agreement_over_pooled_items():
    from alignlab.core.record import RunRecord

    items = [{"id": f"i{k}", "category": "c", "suggested": "x", "status_none": "correct", "correct_none": 1.0,
              "names_suggested_none": 0.0, "status_wrong": "other", "correct_wrong": 0.0,
              "names_suggested_wrong": float(k % 2)} for k in range(6)]
    recs = [RunRecord("behavioural-evals-v0", {"eval": "sycophancy-answer-v0", "model": "m", "eval_preset": "quick"},
                      "h", seed, "ok", "v", data={"items": items[3 * seed:3 * seed + 4]}) for seed in (0, 1)]
    cls = registry.get("experiment", "behavioural-evals")
    label, value = cls().headline(recs)
    assert "bootstrap over 6 items" in label and value.n == 6 and value.mean == 0.5 and 0 < value.half < 0.5
    framing = [dataclasses.replace(r, config={**r.config, "eval": "framing-v0"}) for r in recs]
    assert cls().headline(framing) is None


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
    """Stored results stay valid: a cell's parameters (so its hash) are as they were; the default protocol adds no
    key, and `dtype` is the one the cell runs with (auto resolved)."""
    from alignlab.lm.models import resolve_dtype

    cls = registry.get("experiment", "behavioural-evals")
    cells = cls(cls.Config(evals=("framing-v0",), judge="embedded", dtype="float32")).cells()
    assert cells == [{"eval": "framing-v0", "model": "embedded", "limit": 120, "eval_preset": "default",
                      "dtype": "float32", "judge": "embedded"}]
    assert cls.Config().dtype == "auto" and {c["dtype"] for c in cls().cells()} == {resolve_dtype("auto")}


def test_protocol_settings_reach_every_eval_that_has_them():
    cls = registry.get("experiment", "behavioural-evals")
    config = cls.Config(evals=("sycophancy-answer-v0", "sycophancy-are-you-sure-v0", "calibration-v0", "framing-v0",
                               "sycophancy-feedback-v0"), answer_suffix="", wording="sharma", judge="embedded")
    keys = ("answer_suffix", "wording", "judge")
    params = {c["eval"]: {k: c[k] for k in keys if k in c} for c in cls(config).cells()}
    assert params == {
        "sycophancy-answer-v0": {"answer_suffix": "", "wording": "sharma", "judge": "embedded"},
        "sycophancy-are-you-sure-v0": {"answer_suffix": "", "judge": "embedded"},
        "calibration-v0": {"answer_suffix": ""}, "framing-v0": {"judge": "embedded"}, "sycophancy-feedback-v0": {}}
    for e, p in params.items():  # every setting a cell carries is a field of that eval's config
        eval_config = registry.get("eval", e).Config()
        assert all(getattr(dataclasses.replace(eval_config, **p), k) == v for k, v in p.items())


@pytest.mark.parametrize("kwargs,message", [
    ({"wording": "verbatim"}, "wording must be one of alignlab, sharma (got 'verbatim')"),
    ({"answer_suffix": "Be brief.\n"}, "answer_suffix must be one line"),
    ({"evals": ("framing-v0",), "wording": "sharma"}, "wording applies to sycophancy-answer-v0; evals (framing-v0)"),
    ({"evals": ("sycophancy-feedback-v0",), "answer_suffix": ""}, "answer_suffix applies to"),
    ({"judge": "openai:nowhere"}, "judge: bad endpoint spec"),
])
def test_protocol_settings_are_validated(kwargs, message):
    cls = registry.get("experiment", "behavioural-evals")
    with pytest.raises(ConfigError, match=re.escape(message)):
        cls.Config(**kwargs)


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
        # the Inspect adapter finds evals by walking Eval's subclasses (evals/inspect/solver.py): unmark it too
        del _DummyEval.registered_kind, _DummyEval.registered_name


def test_a_registered_eval_joins_the_experiment(dummy_eval):
    from alignlab.experiments.behavioural_evals import registered_evals

    cls = registry.get("experiment", "behavioural-evals")
    assert dummy_eval in registered_evals()
    assert dummy_eval in cls.Config().evals and dummy_eval in cls.Config.quick().evals
    assert [c["eval"] for c in cls(cls.Config(evals=(dummy_eval,))).cells()] == [dummy_eval]
    with pytest.raises(ConfigError, match=dummy_eval):  # the message lists it among the valid names
        cls.Config(evals=("no-such-eval-v0",))


# -- the chat-model technique slot ----------------------------------------------------------

SPEC = "system-prompt(prompt=anti-sycophancy)"


def test_technique_cells_pair_with_their_baselines():
    from alignlab.core.experiment import TECHNIQUE_KEY
    from alignlab.core.paired import base_key

    cls = registry.get("experiment", "behavioural-evals")
    assert cls.slots == ("chat-model",) and cls.failure_mode == "sycophancy"
    config = dataclasses.replace(cls.smoke_config(), models=("embedded", "embedded#system=helpful"), techniques=(SPEC,))
    exp = cls(config)
    grid = exp.grid()
    base = [p for p in grid if TECHNIQUE_KEY not in p]
    treated = [p for p in grid if TECHNIQUE_KEY in p]
    assert base == exp.cells() and len(treated) == len(base) == 2
    assert {p[TECHNIQUE_KEY] for p in treated} == {"system-prompt-v0"}
    assert sorted(base_key(p) for p in treated) == sorted(base_key(p) for p in base)
    with pytest.raises(ConfigError, match="slot"):
        cls(cls.Config(techniques=("quantilizer",)))  # the slot is checked by the experiment
    with pytest.raises(ConfigError, match="not a registered chat-model technique"):
        cls.Config(models=("embedded#nope",))


def test_a_technique_cell_runs_and_equals_the_shorthand_model(tmp_path):
    """One technique cell of the smoke config (tiny model): its numbers equal the `#system=` model's."""
    from alignlab.core.experiment import TECHNIQUE_KEY
    from alignlab.core.record import code_version
    from alignlab.lm.testing import cached_tiny_llama

    cls = registry.get("experiment", "behavioural-evals")
    tiny = str(cached_tiny_llama())

    def execute(config, treated):
        [params] = [p for p in cls(config).grid() if (TECHNIQUE_KEY in p) == treated]
        task = runner.Task(cls.registered_name, params, runner.cell_hash(cls.registered_name, params), 0,
                           code_version(), str(tmp_path / "runs"), "t", "local")
        record = runner.execute(task)
        assert record.status == "ok", record.traceback
        return record

    smoke = dataclasses.replace(cls.smoke_config(), models=(tiny,))
    treated = execute(dataclasses.replace(smoke, techniques=(SPEC,)), True)
    shorthand = execute(dataclasses.replace(smoke, models=(f"{tiny}#system=anti-sycophancy",)), False)
    baseline = execute(smoke, False)
    assert treated.metrics == shorthand.metrics and treated.data["items"] == shorthand.data["items"]
    outcome = cls().outcome(treated)
    assert outcome == {"intended": treated.metrics["intended"], "capability": treated.metrics["accuracy_none"]}
    section = html.experiment_section(cls.registered_name, [baseline, treated])
    assert "With and without each technique" in section and "system-prompt-v0" in section


def test_outcome_reads_each_evals_capability():
    from alignlab.core.record import RunRecord
    from alignlab.experiments.behavioural_evals import capability

    assert capability("framing-v0", {"over_refusal": 0.25}) == 0.75
    assert capability("sycophancy-are-you-sure-v0", {"first_accuracy": 0.5}) == 0.5
    assert capability("calibration-v0", {"accuracy_generated": 0.4}) == 0.4
    assert math.isnan(capability("no-such-eval-v0", {"accuracy": 1.0}))
    cls = registry.get("experiment", "behavioural-evals")
    rec = RunRecord(cls.registered_name, {"eval": "sycophancy-feedback-v0"}, "h", 0, "ok", "v",
                    metrics={"intended": 0.6, "specified": 0.9, "rated_share": 1.0})
    assert cls().outcome(rec) == {"intended": 0.6, "capability": 1.0}
