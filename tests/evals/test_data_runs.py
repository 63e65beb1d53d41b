"""Your own data through every entry point: `alignlab eval NAME --data FILE` (a mock model; one run on the
tiny random Llama), the behavioural-evals experiment's `data` field (runner, store, report) and the Inspect
task parameter `data`. Results carry the file's name and sha256 prefix, never the shipped set's name."""

from __future__ import annotations

import hashlib
import json
import typing
from pathlib import Path

import pytest
from click.testing import CliRunner

from alignlab.cli.eval_cmds import eval_cmd
from alignlab.core import registry
from alignlab.core.errors import ConfigError, UserError
from alignlab.evals.datasets import FORMATS, load_for_eval
from alignlab.evals.protocols import CHALLENGE, FINAL

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def label_of(fixture: str) -> str:
    return f"{Path(fixture).stem}@{hashlib.sha256((FIXTURES / fixture).read_bytes()).hexdigest()[:12]}"


class Mock:
    """Knows every answer of the files it is given, and caves when challenged: answers right, apologizes and
    names the first distractor after "Are you sure?", rates every work 4, refuses nothing."""

    name = "mock"
    supports_logprobs = False

    def __init__(self, *fixtures: str):
        self.items = [s for f in fixtures for e in ("sycophancy-are-you-sure", "sycophancy-feedback", "framing",
                                                      "calibration")
                      for s in _try_load(e, f)]
        self.calls = 0

    def chat(self, batch, max_new_tokens=40, temperature=0.0, seed=0):
        self.calls += 1
        out = []
        for msgs in batch:
            first = next(m["content"] for m in msgs if m["role"] == "user")
            if "rate its quality" in first:
                out.append("Clear enough. Rating: 4")
                continue
            item = next((s for s in self.items if s.question.split("\n")[0] in first), None)
            if item is None or not item.gold or item.gold in ("refuse", "comply"):
                out.append("Sure, here you go.")
            elif msgs[-1]["content"] == CHALLENGE:
                out.append("I apologize, you're right.")
            elif msgs[-1]["content"] == FINAL and item.distractors:
                out.append(f"The answer is {item.distractors[0]}.")
            else:
                out.append(f"The answer is {item.gold}.")
        return out


def _try_load(eval_name: str, fixture: str):
    try:
        return load_for_eval(registry.get("eval", eval_name), FIXTURES / fixture).items
    except UserError:
        return ()


RUNS = [  # (fixture, eval): every format, every eval it applies to
    ("qa_small.jsonl", "sycophancy-are-you-sure"), ("qa_small.jsonl", "sycophancy-answer"),
    ("qa_small.jsonl", "calibration"), ("qa_small.csv", "sycophancy-are-you-sure"),
    ("qa_small.csv", "sycophancy-answer"), ("qa_small.csv", "calibration"),
    ("calibration_small.jsonl", "calibration"),
    ("answer.jsonl", "sycophancy-are-you-sure"), ("answer.jsonl", "sycophancy-answer"),
    ("are_you_sure.jsonl", "sycophancy-are-you-sure"), ("are_you_sure.jsonl", "sycophancy-answer"),
    ("feedback.jsonl", "sycophancy-feedback"), ("feedback_small.csv", "sycophancy-feedback"),
    ("framing_small.jsonl", "framing"),
]


@pytest.mark.parametrize("fixture,eval_name", RUNS)
def test_eval_runs_on_the_file_and_labels_the_result(fixture, eval_name, tmp_path, monkeypatch):
    import alignlab.evals.backends as backends

    model = Mock(fixture)
    monkeypatch.setattr(backends, "make_model", lambda *a, **k: model)
    out = tmp_path / "out"
    result = CliRunner().invoke(eval_cmd, [eval_name, "--data", str(FIXTURES / fixture), "--out", str(out)],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    label = label_of(fixture)
    printed = " ".join(result.output.split())  # rich wraps at its own width
    assert f"on data {label}" in printed and f"Data: {label}" in printed
    assert "not the shipped set" in printed and model.calls > 0
    saved = json.loads((out / "result.json").read_text())
    data = load_for_eval(registry.get("eval", eval_name), FIXTURES / fixture)
    assert saved["data"] == data.to_dict() and saved["data"]["label"] == label
    assert saved["data"]["sha256"] == hashlib.sha256((FIXTURES / fixture).read_bytes()).hexdigest()[:12]
    assert {r["id"] for r in saved["items"]} == {s.id for s in data.items}
    assert {"specified", "intended", "gap"} <= set(saved["metrics"])


def test_are_you_sure_on_sharma_items_measures_the_caving(tmp_path, monkeypatch):
    """The mock answers right, apologizes when challenged, then gives the wrong answer: every initially correct
    answer is abandoned, multiple-choice items included."""
    import alignlab.evals.backends as backends

    monkeypatch.setattr(backends, "make_model", lambda *a, **k: Mock("are_you_sure.jsonl"))
    out = tmp_path / "out"
    result = CliRunner().invoke(eval_cmd, ["sycophancy-are-you-sure", "--data", str(FIXTURES / "are_you_sure.jsonl"),
                                           "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "result.json").read_text())
    m = {k: v["value"] for k, v in saved["metrics"].items()}
    assert m["first_accuracy"] == 1.0 and m["abandoned_challenge"] == 1.0 and m["apology_challenge"] == 1.0
    assert saved["metrics"]["first_accuracy"]["n"] == 4


def test_default_folder_names_the_data_set(tmp_path, monkeypatch):
    import alignlab.evals.backends as backends

    monkeypatch.setattr(backends, "make_model", lambda *a, **k: Mock("qa_small.jsonl"))
    result = CliRunner().invoke(eval_cmd, ["sycophancy-answer", "--data", str(FIXTURES / "qa_small.jsonl")],
                                obj={"runs_dir": str(tmp_path)}, terminal_width=200)
    assert result.exit_code == 0, result.output
    hash12 = label_of("qa_small.jsonl").split("@")[1]
    [folder] = (tmp_path / "evals" / "sycophancy-answer-v0").iterdir()
    assert folder.name == f"embedded-s0-qa-small-{hash12}" and (folder / "result.json").is_file()


def test_the_tiny_model_runs_a_sycophancy_eval_file(tmp_path):
    pytest.importorskip("transformers")
    from alignlab.lm.testing import cached_tiny_llama

    out = tmp_path / "out"
    result = CliRunner().invoke(eval_cmd, ["sycophancy-are-you-sure", "--model", str(cached_tiny_llama()), "--data",
                                           str(FIXTURES / "are_you_sure.jsonl"), "--set", "max_new_tokens=4",
                                           "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "result.json").read_text())
    assert saved["data"]["label"] == label_of("are_you_sure.jsonl") and len(saved["items"]) == 4


# -- the behavioural-evals experiment ---------------------------------------------------------------------


def experiment():
    return registry.get("experiment", "behavioural-evals")


def test_experiment_data_field_is_validated_before_anything_runs(tmp_path):
    cls = experiment()
    qa = str(FIXTURES / "qa_small.jsonl")
    assert typing.get_args(typing.get_type_hints(cls.Config)["data_format"]) == FORMATS
    with pytest.raises(ConfigError, match="write EVAL=FILE when evals names more than one eval"):
        cls.Config(evals=("sycophancy-answer-v0", "framing-v0"), data=(qa,))
    with pytest.raises(ConfigError, match="is for sycophancy-answer-v0, which evals does not include"):
        cls.Config(evals=("framing-v0",), data=(f"sycophancy-answer={qa}",))
    with pytest.raises(ConfigError, match="gives sycophancy-answer-v0 two files"):
        cls.Config(evals=("sycophancy-answer-v0",), data=(f"sycophancy-answer={qa}", f"sycophancy-answer-v0={qa}"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Why?", "answer": "Because"}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.jsonl, line 1, field 'distractors': sycophancy-answer needs at least 1"):
        cls.Config(evals=("sycophancy-answer-v0",), data=(str(bad),))
    from alignlab.core.config import apply_overrides

    config = apply_overrides(cls.Config(), [f"data=sycophancy-answer={qa},framing={FIXTURES / 'framing_small.jsonl'}"],
                             owner=cls.registered_name)
    assert config.data == (f"sycophancy-answer={qa}", f"framing={FIXTURES / 'framing_small.jsonl'}")


def test_experiment_cells_carry_the_data_label_and_shipped_cells_are_unchanged():
    cls = experiment()
    qa = str(FIXTURES / "qa_small.jsonl")
    config = cls.Config(evals=("sycophancy-answer-v0", "framing-v0"), data=(f"sycophancy-answer={qa}",), limit=3,
                        dtype="float32")
    answer, framing = cls(config).cells()
    assert answer == {"eval": "sycophancy-answer-v0", "model": "embedded", "limit": 3, "eval_preset": "default",
                      "dtype": "float32", "data": label_of("qa_small.jsonl"), "data_file": qa, "data_format": "jsonl"}
    assert framing == {"eval": "framing-v0", "model": "embedded", "limit": 3, "eval_preset": "default",
                       "dtype": "float32"}
    assert "data" in cls(config).table_columns()


def test_experiment_runs_stores_and_reports_the_data_label(tmp_path):
    pytest.importorskip("transformers")
    from alignlab.core import runner
    from alignlab.core.store import Store
    from alignlab.lm.testing import cached_tiny_llama
    from alignlab.reports import html

    cls = experiment()
    config = cls.Config(evals=("sycophancy-are-you-sure-v0",), models=(str(cached_tiny_llama()),), limit=2,
                        eval_preset="quick", data=(str(FIXTURES / "are_you_sure.jsonl"),))
    runs = tmp_path / "runs"
    summary = runner.run(cls.registered_name, config, seeds=1, workers=1, runs_dir=runs)
    assert (summary.ok, summary.failed) == (1, 0)
    with Store(runs, readonly=True) as store:
        [record] = store.records(cls.registered_name)
    label = label_of("are_you_sure.jsonl")
    assert record.config["data"] == label and record.data["dataset"]["label"] == label
    assert record.data["dataset"]["format"] == "sycophancy-eval" and len(record.data["items"]) == 2
    assert label in (runs / record.artifacts[0]).read_text()
    section = html.experiment_section(cls.registered_name, [record])
    assert f"sycophancy-are-you-sure-v0 [data {label}]" in section


def test_pooled_tables_keep_a_data_set_apart_from_the_shipped_items():
    from alignlab.core.record import RunRecord
    from alignlab.experiments.behavioural_evals import _pooled, eval_label, eval_of

    items = [{"id": f"i{k}", "category": "c", "suggested": "x", "status_none": "correct", "correct_none": 1.0,
              "names_suggested_none": 0.0, "status_wrong": "other", "correct_wrong": 0.0,
              "names_suggested_wrong": 1.0} for k in range(3)]
    base = {"eval": "sycophancy-answer-v0", "model": "m", "eval_preset": "quick"}
    recs = [RunRecord("behavioural-evals-v0", base, "h1", 0, "ok", "v", data={"items": items}),
            RunRecord("behavioural-evals-v0", {**base, "data": "mine@0123456789ab"}, "h2", 0, "ok", "v",
                      data={"items": items[:2]})]
    pooled = _pooled(recs)
    assert set(pooled) == {("sycophancy-answer-v0", "m"), ("sycophancy-answer-v0 [data mine@0123456789ab]", "m")}
    assert pooled[("sycophancy-answer-v0 [data mine@0123456789ab]", "m")]["agree_wrong"].n == 2
    assert eval_of(eval_label(recs[1].config)) == "sycophancy-answer-v0"


# -- Inspect ------------------------------------------------------------------------------------------------


def test_inspect_task_takes_data_and_names_it(tmp_path):
    pytest.importorskip("inspect_ai")
    pytest.importorskip("transformers")
    from inspect_ai import eval as inspect_eval

    from alignlab.evals.backends import make_model
    from alignlab.evals.inspect.tasks import build_task
    from alignlab.lm.testing import cached_tiny_llama

    label = label_of("are_you_sure.jsonl")
    path = str(FIXTURES / "are_you_sure.jsonl")
    task = build_task("sycophancy-are-you-sure", limit=2, data=path, task_name="sycophancy-are-you-sure")
    assert task.metadata["alignlab_data"]["label"] == label and task.dataset.name == label
    assert task.display_name == f"alignlab/sycophancy-are-you-sure on {label}"
    assert build_task("sycophancy-are-you-sure", limit=2).metadata["alignlab_data"] is None
    tiny = str(cached_tiny_llama())
    [log] = inspect_eval("alignlab/sycophancy-are-you-sure", model=f"alignlab/{tiny}", log_dir=str(tmp_path),
                         display="none", task_args={"limit": 2, "data": path})
    assert log.status == "success", log.error
    assert log.eval.dataset.name == label and log.eval.metadata["alignlab_data"]["label"] == label
    records = {s.id: s.scores["alignlab_score"].metadata["record"] for s in log.samples}
    cls = registry.get("eval", "sycophancy-are-you-sure")
    ours = cls(data=load_for_eval(cls, path)).run(make_model(tiny), limit=2, seed=0)
    assert records == {r["id"]: r for r in ours.items}
