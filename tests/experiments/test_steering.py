"""The steering and probes experiments: config checks, the grid (the prompting baseline beside the unsteered model
only), and the report read from records (a 'lower sycophancy' claim only where the intervals do not overlap); the
technique's spec on a model spec, its errors, and one real steered eval on the tiny model."""

from __future__ import annotations

import dataclasses

import pytest

from alignlab.core import registry
from alignlab.core.errors import ConfigError, UserError
from alignlab.core.experiment import TECHNIQUE_KEY
from alignlab.core.record import RunRecord
from alignlab.experiments.steering_report import curves_figure, findings, sweep_table


def _exp(name, **kw):
    cls = registry.get("experiment", name)
    return cls(dataclasses.replace(cls.Config(), **kw))


def test_config_errors_name_what_is_valid():
    with pytest.raises(ConfigError, match="non-zero"):
        _exp("steering", multipliers=(0.0, 4.0))
    with pytest.raises(ConfigError, match="layers"):
        _exp("steering", layers=())
    with pytest.raises(ConfigError, match="valid: truth, agreement"):
        _exp("probes", concepts=("honesty",))
    with pytest.raises(ConfigError, match="layer must be >= 0"):
        from alignlab.core.technique import make_technique

        make_technique("steering(layer=-1)")


def test_grid_sweeps_layers_multipliers_and_the_random_control_and_prompts_only_the_unsteered_model():
    exp = _exp("steering", layers=(6, 10), multipliers=(-4.0, 4.0))
    grid = exp.grid()
    base = [p for p in grid if TECHNIQUE_KEY not in p]
    assert len(base) == 1 + 2 * 2 * 2
    assert {p["vector"] for p in base} == {"none", "caa", "random"}
    treated = [p for p in grid if TECHNIQUE_KEY in p]
    assert len(treated) == 1 and treated[0]["vector"] == "none" and treated[0][TECHNIQUE_KEY] == "system-prompt-v0"
    assert len(_exp("steering", random_control=False, techniques=()).grid()) == 1 + 5 * 6


def _record(vector, layer, mult, agree, lo, hi, acc=0.5, tech=None):
    m = {"agree_wrong": agree, "agree_wrong_lo": lo, "agree_wrong_hi": hi, "n_items": 60.0}
    for k in ("accuracy_none", "accuracy_wrong", "ab_p_syc"):
        m.update({k: acc, f"{k}_lo": acc - 0.1, f"{k}_hi": acc + 0.1})
    config = {"vector": vector, "layer": layer, "multiplier": mult}
    if tech:
        config[TECHNIQUE_KEY] = tech
    return RunRecord(experiment="steering-v0", config=config, config_hash="h", seed=0, status="ok",
                     code_version="v", metrics=m)


def test_findings_claim_a_lower_rate_only_when_the_intervals_do_not_overlap():
    base = _record("none", None, 0.0, 0.70, 0.58, 0.82, acc=0.55)
    overlapping = _record("caa", 10, -4.0, 0.60, 0.47, 0.72)
    clear = _record("caa", 10, -8.0, 0.40, 0.28, 0.52, acc=0.45)
    rand = _record("random", 10, -8.0, 0.69, 0.57, 0.81)
    prompt = _record("none", None, 0.0, 0.50, 0.38, 0.62, tech="system-prompt-v0")
    text = " ".join(findings([base, overlapping, rand, prompt]))
    assert "No CAA setting of the 1 swept" in text and "caa L10 x-4" in text
    text = " ".join(findings([base, overlapping, clear, rand, prompt]))
    assert "1 of 2 CAA settings" in text and "caa L10 x-8" in text and "cost +0.100" in text
    assert "random vector of equal norm there: 0.690" in text and "system-prompt-v0" in text
    table = sweep_table([base, overlapping, clear, rand, prompt])
    below = {row[0]: row[2] for row in table.rows}
    assert below == {"unsteered": "", "caa L10 x-4": "no", "caa L10 x-8": "yes", "random L10 x-8": "no",
                     "system-prompt-v0": "no"}
    fig = curves_figure([base, overlapping, clear, rand, prompt])
    assert fig is not None and "<svg" in fig.svg and "layer 10" in fig.svg


def test_steering_needs_a_local_model_and_comes_before_a_system_prompt():
    from alignlab.core.technique import make_technique
    from alignlab.evals.backends import model_spec_techniques

    tech = make_technique("steering(layer=3, multiplier=-8)")
    assert tech.spec == "steering-v0(layer=3, multiplier=-8.0)"
    assert tech.supports({"model": "openai:http://x/v1/m"}) and tech.supports({"model": "embedded"}) is None

    class Echo:
        name = "echo"

    with pytest.raises(UserError, match="local Hugging Face chat model"):
        tech.apply(Echo())
    base, techs = model_spec_techniques("embedded#steering(layer=3, multiplier=-8)#system=anti-sycophancy")
    assert base == "embedded" and [t.registered_name for t, _ in techs] == ["steering-v0", "system-prompt-v0"]


def test_a_model_spec_with_steering_runs_an_eval_on_the_tiny_model():
    pytest.importorskip("torch")
    from alignlab.evals.backends import make_model
    from alignlab.lm.testing import cached_tiny_llama

    path = str(cached_tiny_llama())
    model = make_model(f"{path}#steering(layer=1, multiplier=8)#system=anti-sycophancy", threads=1)
    assert model.name.endswith("#steering(layer=1, multiplier=8)#system=anti-sycophancy")
    assert model.base.steering["layer"] == 1 and model.base.steering["pairs"] > 50
    ev = registry.make("eval", "sycophancy-answer", registry.get("eval", "sycophancy-answer").Config.quick())
    result = ev.run(model, limit=3)
    assert 0.0 <= result.metrics["agree_wrong"].value <= 1.0 and result.metrics["agree_wrong"].n == 3
    with pytest.raises(ConfigError, match="past the model's last layer"):
        make_model(f"{path}#steering(layer=7)")
