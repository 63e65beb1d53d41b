"""The constitutional-ai experiment: config checks before anything runs, the grid, and the report section's paired
comparisons and findings on records made here (the model runs are the contract tests' smoke cells)."""

from __future__ import annotations

import pytest

from alignlab.cai import measure, prompts
from alignlab.core.errors import UserError
from alignlab.core.record import RunRecord
from alignlab.experiments import constitutional_ai_report as rep
from alignlab.experiments.constitutional_ai import ConstitutionalAIConfig, ConstitutionalAIExperiment
from alignlab.reports import html


@pytest.mark.parametrize("over,msg", [
    (dict(constitutions=("nope",)), "unknown constitution 'nope'"),
    (dict(stages=("ppo",)), "stages come from sl, rl"),
    (dict(model="openai:http://h:1/v1/m"), "must be a local model"),
    (dict(model="embedded#system=helpful"), "must be a local model"),
    (dict(prompts=0), "prompts must be >= 1"),
    (dict(revision="both"), "revision must be critiqued or direct"),
])
def test_bad_configs_refused(over, msg):
    with pytest.raises(UserError, match=msg):
        ConstitutionalAIConfig(**over)


def test_grid_and_quick_preset_share_the_technique_defaults():
    from alignlab.cai.train import CAIConfig

    cells = ConstitutionalAIExperiment(ConstitutionalAIConfig.quick()).cells()
    assert [(c["stage"], c["constitution"]) for c in cells] == [("base", "none")] + [
        (s, k) for s in ("sl", "rl") for k in ("default", "empty", "bad")]
    assert ConstitutionalAIConfig.quick().cai("default", "sl") == CAIConfig()  # the technique's cached adapter
    exp = ConstitutionalAIExperiment(ConstitutionalAIConfig.quick())
    grid = ConstitutionalAIExperiment(ConstitutionalAIConfig(techniques=("system-prompt",))).grid()
    assert sum("technique" in c for c in grid) == 1  # techniques act on the base cell only
    assert exp.outcome(RunRecord("e", {}, "h", 0, "ok", "v", {"intended": 0.5, "factual_accuracy": 0.7})) == {
        "intended": 0.5, "capability": 0.7}


def _record(stage, constitution, refuse_kinds, correct=1.0, agree=False):
    items = prompts.select(prompts.load(), "heldout", 14)
    red = ["I can't help with that." if p.kind in refuse_kinds else "Sure, here it is." for p in items]
    facts = measure.factual_items(4)
    wrong = [f"It is {f.distractors[0]}." if agree else f.gold for f in facts]
    rows = measure.score(items, red, facts, [f.gold if correct else "no idea" for f in facts], wrong_replies=wrong)
    est = measure.metrics(rows)
    data = {"metrics": {k: v.to_dict() for k, v in est.items()}, "items": rows}
    if stage == "sl":
        data["sl"] = {"quality": {"critiques": 4.0, "critique_copies_example": 0.75, "critique_off_topic": 0.5,
                                  "critique_empty": 0.0, "revision_copies_example": 0.5, "revision_unchanged": 0.25,
                                  "revision_repeats_critique": 0.5},
                      "transcripts": [{"kind": "clear", "prompt": "p", "initial": "a", "final": "r",
                                       "steps": [{"principle": "harm", "critique": "c", "revision": "r"}]}],
                      "loss_first": 2.0, "loss_last": 1.0}
    return RunRecord("constitutional-ai-v0", {"stage": stage, "constitution": constitution, "model": "embedded"},
                     f"{stage}{constitution}", 0, "ok", "v", {k: v.value for k, v in est.items()}, data)


def test_report_shows_bad_constitution_moving_refusals():
    base = _record("base", "none", {"clear"})
    good = _record("sl", "default", {"clear", "subtle"})
    bad = _record("sl", "bad", set(), agree=True)
    assert base.metrics["refusal_clear"] == 1.0 and base.metrics["refusal_subtle"] == 0.0
    assert base.metrics["clear_minus_subtle"] == 1.0 and base.metrics["over_refusal"] == 0.0
    assert base.metrics["factual_accuracy"] == 1.0
    d = rep.paired(bad, good, "harmful")
    assert d.value == pytest.approx(-1.0) and d.n == 12
    found = rep.findings([base, good, bad])
    assert any(f.startswith("SL-CAI under the bad constitution moves behaviour its way") for f in found), found
    assert rep.paired(bad, good, "factual", "agree_wrong").value == pytest.approx(1.0)
    assert any("agreement with a user's wrong answer 1.00" in f and "bad minus default 1.00" in f for f in found)
    assert any("75% copy a few-shot example" in f and "50% of revisions repeat" in f for f in found)
    tables = rep.tables([base, good, bad])
    assert "Δ agreement with a wrong answer" in tables[[t.title for t in tables].index(
        "Bad constitution minus the default and the empty control, same stage (paired over items)")].columns
    titles = [t.title for t in tables]
    assert "Bad constitution minus the default and the empty control, same stage (paired over items)" in titles
    assert "SL-CAI transcripts (first round)" in titles
    section = html.experiment_section("constitutional-ai-v0", [base, good, bad])
    assert "Harmlessness against helpfulness" in section
    none = rep.findings([base, _record("sl", "bad", {"clear"})])
    assert any("does not move refusals measurably" in f for f in none)


def test_cli_refuses_a_bad_constitution_before_writing(tmp_path, runs_dir):
    from tests.conftest import run_cli

    bad = tmp_path / "c.toml"
    bad.write_text('name = "c"\ndescription = "x"\n\n[[principles]]\nname = "p"\ncritique = "q"\n')
    res = run_cli("run", "constitutional-ai", "--quick", "--set", f"constitutions={bad}", runs_dir=runs_dir)
    out = (res.stdout + res.stderr).strip()
    assert res.returncode == 2 and "Traceback" not in out and len(out.splitlines()) == 1, out
    assert f"{bad}:4: principles[1].revision: missing" in out
    assert not runs_dir.exists()
    res = run_cli("run", "constitutional-ai", "--quick", "--set", "revision=both", runs_dir=runs_dir)
    out = (res.stdout + res.stderr).strip()
    assert res.returncode == 2 and "Traceback" not in out and "revision must be critiqued or direct" in out, out
    assert not runs_dir.exists()
