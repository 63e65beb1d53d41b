"""Generation with reused KV caches gives what plain generation gives (tiny random Llama)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from alignlab.lm.chat import LocalChatModel  # noqa: E402
from alignlab.lm.generate import generate  # noqa: E402
from alignlab.lm.prefix_cache import PrefixStore, generate_cached  # noqa: E402
from alignlab.lm.testing import cached_tiny_llama  # noqa: E402

FIRST = [[{"role": "user", "content": "word " * k + "tell me?"}] for k in (1, 9, 4, 14, 2)]


@pytest.fixture(scope="module")
def pair():
    torch.set_num_threads(1)
    cached = LocalChatModel.load(str(cached_tiny_llama()), batch_size=2)  # small batches: several prefill groups
    plain = LocalChatModel(cached.model, cached.tokenizer, prefix_cache=False)
    return cached, plain


def test_multi_turn_with_reused_caches_equals_plain_generation(pair):
    cached, plain = pair
    convs_c, convs_p = [list(c) for c in FIRST], [list(c) for c in FIRST]
    for turn in ("Are you sure?", "So what is it? Be brief."):
        a = cached.generate(convs_c, max_new_tokens=7)
        b = plain.generate(convs_p, max_new_tokens=7)
        assert a == b
        for conv, g in zip(convs_c, a):
            conv += [{"role": "assistant", "content": g.text}, {"role": "user", "content": turn}]
        convs_p = [list(c) for c in convs_c]
    assert cached.generate(convs_c, max_new_tokens=7) == plain.generate(convs_p, max_new_tokens=7)
    assert cached.prefix_store.hits >= 10 and cached.prefix_store.reused_tokens > 100


def test_rows_that_finish_early_leave_the_batch_without_changing_the_others(pair):
    cached, plain = pair
    prompts = [cached.render(c) for c in FIRST]
    ids = torch.tensor([cached.tokenizer(prompts[0], add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        stop_token = int(cached.model(input_ids=ids).logits[0, -1].argmax())
    saved = cached.model.generation_config.eos_token_id
    try:  # row 0 ends at its first token; the rest run on
        cached.model.generation_config.eos_token_id = [stop_token, cached.tokenizer.eos_token_id]
        a = generate_cached(cached.model, cached.tokenizer, prompts, PrefixStore(), max_new_tokens=6)
        b = generate(cached.model, cached.tokenizer, prompts, max_new_tokens=6)
    finally:
        cached.model.generation_config.eos_token_id = saved
    assert a == b
    assert a[0].finish_reason == "stop" and a[0].completion_tokens == 1
    assert any(g.finish_reason == "length" for g in a[1:])


def test_a_small_store_evicts_and_stays_correct(pair):
    cached, plain = pair
    store = PrefixStore(max_bytes=1)
    prompts = [cached.render(c) for c in FIRST]
    a = generate_cached(cached.model, cached.tokenizer, prompts, store, max_new_tokens=4)
    assert len(store.entries) == 1  # everything but the newest entry was evicted
    again = generate_cached(cached.model, cached.tokenizer, prompts, store, max_new_tokens=4)
    assert a == again == generate(cached.model, cached.tokenizer, prompts, max_new_tokens=4)


def test_lookup_finds_the_longest_shared_prefix_and_leaves_one_token():
    store = PrefixStore()
    fake = lambda n: [(torch.zeros(1, n, 2), torch.zeros(1, n, 2))]  # noqa: E731
    store.add([1, 2, 3], fake(3))
    store.add([1, 2, 9, 9], fake(4))
    cache, n = store.lookup([1, 2, 9, 5])
    assert n == 3 and cache[0][0].shape[1] == 3
    assert store.lookup([1, 2, 3])[1] == 2  # the last token is always recomputed
    assert store.lookup([7])[1] == 0


def test_seeded_sampling_is_reproducible(pair):
    cached, _ = pair
    a = cached.chat(FIRST, max_new_tokens=6, temperature=1.0, seed=5)
    b = cached.chat(FIRST, max_new_tokens=6, temperature=1.0, seed=5)
    c = cached.chat(FIRST, max_new_tokens=6, temperature=1.0, seed=6)
    assert a == b and a != c
