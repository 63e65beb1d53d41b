"""Continuous batching (lm.continuous) gives what plain generation gives, whatever the number of slots: rows that
finish are refilled with waiting prompts, the batch shifts left when its cache fills, and a sampled prompt's tokens
do not depend on what it is batched with (tiny random Llama)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from alignlab.lm import continuous as C  # noqa: E402
from alignlab.lm.chat import LocalChatModel  # noqa: E402
from alignlab.lm.continuous import SlotDecoder, generate_continuous  # noqa: E402
from alignlab.lm.generate import generate  # noqa: E402
from alignlab.lm.prefix_cache import PrefixStore, generate_cached  # noqa: E402
from alignlab.lm.testing import cached_tiny_llama  # noqa: E402

CONVS = [[{"role": "user", "content": "word " * k + "tell me?"}] for k in (1, 9, 4, 14, 2, 7, 3, 11, 5, 20, 6)]


@pytest.fixture(scope="module")
def tiny() -> LocalChatModel:
    torch.set_num_threads(1)
    return LocalChatModel.load(str(cached_tiny_llama()), batch_size=2)


@pytest.fixture
def prompts(tiny) -> list[str]:
    return [tiny.render(c) for c in CONVS]


@pytest.fixture
def tight(monkeypatch) -> list[SlotDecoder]:
    """Caches with room for one row and 3 columns: the batch must shift left every few steps."""
    made = []
    create = SlotDecoder.create.__func__

    def small(cls, model, rows, capacity):
        dec = create(cls, model, rows, capacity)
        made.append(dec)
        return dec

    monkeypatch.setattr(C, "capacity", lambda longest, new: longest + new + 3)
    monkeypatch.setattr(SlotDecoder, "create", classmethod(small))
    return made


@pytest.mark.parametrize("slots", [1, 3, 5, 16])
def test_greedy_equals_plain_generation_for_any_number_of_slots(tiny, prompts, tight, slots):
    want = generate(tiny.model, tiny.tokenizer, prompts, max_new_tokens=9)
    got = generate_continuous(tiny.model, tiny.tokenizer, prompts, PrefixStore(), max_new_tokens=9,
                              decode_batch=slots, prefill_batch=2)
    assert got == want
    assert tight[-1].slots == min(slots, len(prompts))
    if slots < len(prompts):
        assert tight[-1].shifts > 0  # the left shift (and, at admission, the right shift) ran


def test_rows_ending_at_eos_are_refilled(tiny, prompts):
    ids = torch.tensor([tiny.tokenizer(prompts[0], add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        stop = int(tiny.model(input_ids=ids).logits[0, -1].argmax())
    saved = tiny.model.generation_config.eos_token_id
    try:
        tiny.model.generation_config.eos_token_id = [stop, tiny.tokenizer.eos_token_id]
        want = generate(tiny.model, tiny.tokenizer, prompts, max_new_tokens=12)
        got = [generate_continuous(tiny.model, tiny.tokenizer, prompts, PrefixStore(), max_new_tokens=12,
                                   decode_batch=slots, prefill_batch=3) for slots in (1, 4)]
    finally:
        tiny.model.generation_config.eos_token_id = saved
    assert got == [want, want]
    assert want[0].finish_reason == "stop" and want[0].completion_tokens == 1


def test_turns_reuse_the_store_as_generate_cached_does(tiny, prompts):
    store, ref_store = PrefixStore(), PrefixStore()
    first = generate_continuous(tiny.model, tiny.tokenizer, prompts, store, max_new_tokens=5, decode_batch=4)
    assert first == generate_cached(tiny.model, tiny.tokenizer, prompts, ref_store, max_new_tokens=5)
    second = [p + g.text + "<|im_end|>\n<|im_start|>user\nSure?<|im_end|>\n<|im_start|>assistant\n"
              for p, g in zip(prompts, first)]
    hits = store.reused_tokens
    again = generate_continuous(tiny.model, tiny.tokenizer, second, store, max_new_tokens=5, decode_batch=4)
    assert again == generate_cached(tiny.model, tiny.tokenizer, second, ref_store, max_new_tokens=5)
    assert store.reused_tokens - hits >= sum(len(tiny.tokenizer(p)["input_ids"]) for p in prompts)


def test_a_sampled_prompt_gets_the_same_tokens_whatever_its_batch(tiny, prompts):
    state = torch.get_rng_state()
    kw = dict(max_new_tokens=7, temperature=0.9, seed=4)
    alone = generate_continuous(tiny.model, tiny.tokenizer, prompts[:1], PrefixStore(), **kw)
    batched = generate_continuous(tiny.model, tiny.tokenizer, prompts, PrefixStore(), decode_batch=3, **kw)
    assert batched[0] == alone[0]
    assert batched == generate_continuous(tiny.model, tiny.tokenizer, prompts, PrefixStore(), decode_batch=16, **kw)
    assert batched != generate_continuous(tiny.model, tiny.tokenizer, prompts, PrefixStore(), decode_batch=3,
                                          **{**kw, "seed": 5})
    assert torch.equal(state, torch.get_rng_state())


def test_models_without_fast_steps_fall_back_to_generate_cached(tiny, prompts, monkeypatch):
    monkeypatch.setattr(SlotDecoder, "create", classmethod(lambda cls, *a, **k: None))
    got = generate_continuous(tiny.model, tiny.tokenizer, prompts, PrefixStore(), max_new_tokens=4, decode_batch=3)
    assert got == generate(tiny.model, tiny.tokenizer, prompts, max_new_tokens=4)


def test_bad_arguments_are_refused(tiny, prompts):
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_continuous(tiny.model, tiny.tokenizer, prompts, PrefixStore(), max_new_tokens=0)
    assert generate_continuous(tiny.model, tiny.tokenizer, [], PrefixStore()) == []
