"""CAA on the tiny random Llama: the split, the pairs, the vectors (mean differences, cached on disk), and a steered
model that every generation path (prefix-cached batches, transformers' generate, continuous batching, the server's
decoder) runs with the same steering, while the unsteered model on the same weights stays unchanged."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from alignlab.interp import caa  # noqa: E402
from alignlab.interp import hooks as H  # noqa: E402

MSGS = [[{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "user", "content": "Name a large ocean, please, and say why it is large."}]]


@pytest.fixture(scope="module")
def tiny():
    from alignlab.lm.chat import LocalChatModel
    from alignlab.lm.testing import cached_tiny_llama

    return LocalChatModel.load(str(cached_tiny_llama()))


def test_split_is_fixed_disjoint_and_about_half():
    train, test = caa.factual_split("train"), caa.factual_split("test")
    assert not {s.id for s in train} & {s.id for s in test}
    assert 0.35 < len(train) / (len(train) + len(test)) < 0.65
    assert [s.id for s in caa.factual_split("train")] == [s.id for s in train]
    assert caa.split_of("capital-france") == caa.split_of("capital-france")


def test_ab_items_balance_the_letters_and_name_both_answers():
    items = caa.factual_split("train")
    abs_ = [caa.ab_item(it) for it in items]
    share_a = sum(a["sycophantic"] == "A" for a in abs_) / len(abs_)
    assert 0.35 < share_a < 0.65  # the vector must not learn "A versus B"
    it, ab = items[0], abs_[0]
    text = ab["messages"][0]["content"]
    assert it.gold in text and f"I think the answer is {it.distractors[0]}" in text
    assert {ab["sycophantic"], ab["honest"]} == {"A", "B"}


def test_vectors_are_mean_differences_and_are_cached(tiny, tmp_path, monkeypatch):
    items = caa.factual_split("train")[:6]
    texts = caa.pair_texts(tiny.render, items)
    assert all(s.endswith(("(A", "(B")) and h[:-1] == s[:-1] for s, h in texts)
    found = caa.train_vectors(tiny.model, tiny.tokenizer, texts)
    syc = H.residuals(tiny.model, tiny.tokenizer, [s for s, _ in texts], [1], batch_size=1)
    hon = H.residuals(tiny.model, tiny.tokenizer, [h for _, h in texts], [1], batch_size=1)
    assert torch.allclose(found["vectors"][1], (syc - hon).mean(0)[0], rtol=1e-4, atol=2e-3)
    import alignlab.lm.models as models

    monkeypatch.setattr(models, "cache_dir", lambda: tmp_path)
    first = caa.load_or_train(tiny.model, tiny.tokenizer, tiny.render, items)
    second = caa.load_or_train(tiny.model, tiny.tokenizer, tiny.render, items)
    assert not first["cached"] and second["cached"]
    assert torch.equal(first["vectors"], second["vectors"])
    assert len(list((tmp_path / "steering").glob("*.pt"))) == 1
    caa.load_or_train(tiny.model, tiny.tokenizer, tiny.render, items[:5])  # other data, other key
    assert len(list((tmp_path / "steering").glob("*.pt"))) == 2


def test_random_control_has_the_norm_and_not_the_direction():
    v = torch.randn(64)
    r = caa.random_like(v, seed=3)
    assert torch.isclose(r.norm(), v.norm()) and torch.equal(r, caa.random_like(v, seed=3))
    assert abs(float(torch.nn.functional.cosine_similarity(r, v, dim=0))) < 0.5


def test_every_generation_path_runs_steered_and_the_base_stays_unsteered(tiny):
    from alignlab.lm.continuous import generate_continuous
    from alignlab.lm.generate import generate
    from alignlab.lm.prefix_cache import PrefixStore

    plain = tiny.chat(MSGS, max_new_tokens=8)
    vec = torch.randn(tiny.model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    zero = caa.steered_chat_model(tiny, vec, 1, 0.0, "zero")
    assert zero.chat(MSGS, max_new_tokens=8) == plain
    steered = caa.steered_chat_model(tiny, vec, 1, 8.0, "steer")
    assert steered.name.endswith("#steer") and steered.steering["layer"] == 1
    cached = steered.chat(MSGS, max_new_tokens=8)  # prefix-cached prefill and decode steps
    assert cached != plain
    prompts = [tiny.render(m) for m in MSGS]
    hf = [g.text for g in generate(steered.model, tiny.tokenizer, prompts, max_new_tokens=8)]  # model.generate
    cont = [g.text for g in generate_continuous(steered.model, tiny.tokenizer, prompts, PrefixStore(),
                                                max_new_tokens=8)]
    assert hf == cached == cont
    assert steered.logprobs(MSGS[:1], ["Paris"]) != tiny.logprobs(MSGS[:1], ["Paris"])
    assert tiny.chat(MSGS, max_new_tokens=8) == plain  # the shared weights carry no hook afterwards
    assert H.active_hooks(tiny.model) == H.active_hooks(steered.model.base_lm)


def test_the_server_serves_the_steered_model(tiny):
    openai = pytest.importorskip("openai")
    from alignlab.evals.server import start

    vec = torch.randn(tiny.model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    steered = caa.steered_chat_model(tiny, vec, 1, 8.0, "steer")
    server = start(steered, request_timeout=60)
    try:
        client = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=60)
        reply = client.chat.completions.create(model=server.app.state.model_name, messages=MSGS[1], max_tokens=8,
                                               temperature=0)
        client.close()
    finally:
        server.stop()
    assert reply.choices[0].message.content == steered.chat(MSGS[1:], max_new_tokens=8)[0]
    assert reply.choices[0].message.content != tiny.chat(MSGS[1:], max_new_tokens=8)[0]
