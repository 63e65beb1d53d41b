"""The opt-in compiled batch-1 decoding step (lm.compiled_step): off by default, the eager step's logits up to float
rounding on the tiny random Llama, and a failed compile gives one warning and the eager path's outputs."""

from __future__ import annotations

import warnings
import weakref

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from alignlab.lm import compiled_step as C  # noqa: E402
from alignlab.lm import generate as G  # noqa: E402
from alignlab.lm.chat import LocalChatModel  # noqa: E402
from alignlab.lm.prefix_cache import PrefixStore, generate_cached  # noqa: E402
from alignlab.lm.testing import cached_tiny_llama  # noqa: E402

QUESTIONS = ["What is the capital of France?", "Who wrote Hamlet?", "What is 7 + 5?"]


@pytest.fixture(scope="module")
def tiny() -> LocalChatModel:
    torch.set_num_threads(1)
    return LocalChatModel.load(str(cached_tiny_llama()), batch_size=1)


@pytest.fixture
def state(monkeypatch):
    """Restore the module's switches after each test."""
    monkeypatch.delenv("ALIGNLAB_COMPILED_DECODE", raising=False)
    saved = dict(C._STATE)
    yield C._STATE
    C._STATE.clear()
    C._STATE.update(saved)


def answers(chat: LocalChatModel, max_new_tokens: int = 8) -> list[str]:
    """Each question alone (decoding batch 1), greedy, every row to max_new_tokens."""
    prompts = [chat.render([{"role": "user", "content": q}]) for q in QUESTIONS]
    return [generate_cached(chat.model, chat.tokenizer, [p], PrefixStore(), max_new_tokens=max_new_tokens,
                            stop_at_eos=False)[0].text for p in prompts]


def test_off_by_default_and_by_environment(state, monkeypatch, tiny):
    state["enabled"] = None
    assert not C.enabled() and C.CompiledDecoder.create(tiny.model, 1, 16) is None
    monkeypatch.setenv("ALIGNLAB_COMPILED_DECODE", "0")
    assert not C.enabled()
    monkeypatch.setenv("ALIGNLAB_COMPILED_DECODE", "1")
    assert C.enabled()
    C.enable(False)
    assert not C.enabled()


def test_only_batch_one_and_shapes_in_powers_of_two(state, tiny):
    C.enable(True)
    assert C.CompiledDecoder.create(tiny.model, 2, 16) is None  # batched decoding keeps BatchDecoder
    assert [C.bucket(n) for n in (1, 256, 257, 600)] == [256, 256, 512, 1024]


def test_a_failed_compile_warns_once_and_decodes_eagerly(state, monkeypatch, tiny):
    eager = answers(tiny)

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(C, "_STEPS", weakref.WeakKeyDictionary())  # nothing compiled before in this process
    C.enable(True)
    state["failed"] = False
    with pytest.warns(RuntimeWarning, match="compiled decoding unavailable .*no C\\+\\+ compiler found"):
        assert answers(tiny) == eager
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        assert answers(tiny) == eager


def test_compiled_steps_give_the_eager_logits_and_caches(state, tiny):
    model = tiny.model
    C.enable(True)
    state["failed"] = False
    ids = tiny.tokenizer(tiny.render([{"role": "user", "content": QUESTIONS[0]}]), add_special_tokens=False)
    ids = ids["input_ids"]
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids]), use_cache=True)
        rows = [[(layer.keys[0], layer.values[0]) for layer in out.past_key_values.layers]]
        fast = C.CompiledDecoder.create(model, 1, len(ids) + 6)
        assert fast is not None, "compiling failed on this machine"
        assert fast.capacity == 256 and C.COMPILE_SECONDS
        eager = G.BatchDecoder.create(model, 1, len(ids) + 6)
        for dec in (fast, eager):
            dec.fill(rows, [len(ids)])
        token, pos = out.logits[:, -1].argmax(-1), torch.tensor([len(ids)])
        for _ in range(6):
            a, b = fast.step(token, pos), eager.step(token, pos)
            assert a.shape == b.shape and a.dtype == torch.float32
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
            token, pos = b.argmax(-1), pos + 1
        for (k1, v1), (k2, v2) in zip(fast.row_cache(0), eager.row_cache(0)):
            assert k1.shape == k2.shape == (model.config.num_key_value_heads, len(ids) + 6, k2.shape[-1])
            torch.testing.assert_close(k1, k2, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(v1, v2, atol=1e-5, rtol=1e-5)
    C.enable(False)
    eager_answers = answers(tiny)
    C.enable(True)
    assert answers(tiny) == eager_answers  # the tiny model's logits are well separated (lm.testing)
