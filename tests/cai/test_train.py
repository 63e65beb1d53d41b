"""SL-CAI and RL-CAI training plumbing on the tiny random Llama (alignlab.lm.testing): adapters trained once and
cached by key, reloaded, and reached through the `constitutional-ai` technique. Outputs are noise: plumbing only."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from alignlab.cai import train  # noqa: E402
from alignlab.core.errors import ConfigError, UserError  # noqa: E402
from alignlab.core.technique import make_technique  # noqa: E402
from alignlab.lm.chat import LocalChatModel  # noqa: E402
from alignlab.lm.testing import cached_tiny_llama  # noqa: E402

TINY = dict(prompts=3, max_new_tokens=6, examples=1, sft_steps=1, dpo_steps=1, batch_size=2)


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    path = str(cached_tiny_llama())  # built under the real cache before it is redirected
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    return path


def test_rl_chain_trains_once_and_loads(tiny):
    config = train.CAIConfig(stage="rl", **TINY)
    chain = train.ensure(tiny, config)
    assert [p.name.split("-")[0] for p in chain] == ["sl", "rl"]
    sl, rl = (train.meta(p) for p in chain)
    assert sl["quality"]["critiques"] == 3 and len(train.rows(chain[0])) == 3
    assert sl["log"] and rl["feedback"]["pairs"] == 3 and 0 <= rl["feedback"]["position_bias"] <= 1
    assert (chain[0] / "adapter_config.json").exists()
    shared = list((train.cache_root() / "initial").glob("*.json"))  # initial answers, shared by constitutions
    assert len(shared) == 1 and json.loads(shared[0].read_text()) == [t["initial"] for t in train.rows(chain[0])]
    assert all(t["steps"] and t["steps"][0]["critique"] == "" for t in train.rows(chain[0]))  # direct revisions
    stamp = [(p / "meta.json").stat().st_mtime_ns for p in chain]
    assert train.ensure(tiny, config) == chain
    assert [(p / "meta.json").stat().st_mtime_ns for p in chain] == stamp  # cached: not trained again
    assert train.adapter_dir(tiny, train.CAIConfig(stage="sl", **TINY), "sl") == chain[0]  # SL shared with RL
    bad = train.adapter_dir(tiny, train.CAIConfig(constitution="bad", **TINY), "sl")
    assert bad != chain[0] and bad.name.startswith("sl-bad-")

    base = LocalChatModel.load(tiny)
    tuned = make_technique("constitutional-ai(" + ", ".join(f"{k}={v}" for k, v in TINY.items()) +
                           ", stage=rl)").apply(base)
    assert tuned.name.endswith("#constitutional-ai-v0(batch_size=2, dpo_steps=1, examples=1, max_new_tokens=6, "
                               "prompts=3, sft_steps=1, stage=rl)")
    w0 = dict(base.model.named_parameters())["model.layers.0.self_attn.q_proj.weight"]
    w1 = dict(tuned.model.named_parameters())["model.layers.0.self_attn.q_proj.weight"]
    assert w0.shape == w1.shape and not bool((w0 == w1).all())  # the SL adapter is merged in
    assert len(tuned.chat([[{"role": "user", "content": "hi"}]], max_new_tokens=3)) == 1
    assert tuned.model.dtype == base.model.dtype  # the trained model keeps the dtype it was given in
    fp32, bf16 = (train.adapter_dir(tiny, train.CAIConfig(dtype=d, **TINY), "sl") for d in ("float32", "bfloat16"))
    assert fp32 != bf16  # the generating dtype changes the SFT data, so it is part of the cache key


def test_config_and_base_checks(tmp_path):
    with pytest.raises(ConfigError, match="stage must be sl or rl"):
        train.CAIConfig(stage="ppo")
    with pytest.raises(ConfigError, match="prompts must be >= 1"):
        train.CAIConfig(prompts=0)
    with pytest.raises(ConfigError, match="revision must be critiqued or direct"):
        train.CAIConfig(revision="both")
    with pytest.raises(ConfigError, match="sft_lr must be a positive number"):
        train.CAIConfig(sft_lr=0.0)
    with pytest.raises(ConfigError, match="dpo_lr must be a positive number"):
        train.CAIConfig(dpo_lr=float("nan"))
    with pytest.raises(ConfigError, match="dtype must be auto, float32 or bfloat16"):
        train.CAIConfig(dtype="fp8")
    with pytest.raises(UserError, match="unknown constitution 'nope'"):
        train.CAIConfig(constitution="nope")

    class Endpoint:
        name = "openai:http://x/v1/m"

    with pytest.raises(UserError, match="needs a local model"):
        train.base_path_of(Endpoint())
    assert make_technique("constitutional-ai").supports({"model": "openai:http://h/v1/m"})
    assert make_technique("constitutional-ai").supports({"model": "embedded"}) is None
