"""Batched generation and continuation log-probabilities, on a tiny random Llama (plumbing only)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from alignlab.lm.chat import ChatModel, LocalChatModel  # noqa: E402
from alignlab.lm.generate import continuation_logprobs, generate, render_chat  # noqa: E402
from alignlab.lm.testing import cached_tiny_llama  # noqa: E402

PROMPTS = [[{"role": "user", "content": "hello " * k + "what is this?"}] for k in (1, 7, 3, 12, 2, 5)]


@pytest.fixture(scope="module")
def tiny() -> LocalChatModel:
    torch.set_num_threads(1)
    return LocalChatModel.load(str(cached_tiny_llama()), batch_size=4)


def test_local_model_satisfies_the_chat_interface(tiny):
    assert isinstance(tiny, ChatModel) and tiny.supports_logprobs


def test_batched_greedy_equals_one_at_a_time(tiny):
    prompts = [tiny.render(p) for p in PROMPTS]
    batched = generate(tiny.model, tiny.tokenizer, prompts, max_new_tokens=8, batch_size=16)
    single = generate(tiny.model, tiny.tokenizer, prompts, max_new_tokens=8, batch_size=1)
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(g.completion_tokens == 8 and g.finish_reason == "length" for g in batched)
    assert [g.prompt_tokens for g in batched] == [len(tiny.tokenizer(p, add_special_tokens=False)["input_ids"])
                                                  for p in prompts]


def test_order_is_preserved_whatever_the_batch(tiny):
    forward = tiny.chat(PROMPTS, max_new_tokens=6)
    backward = tiny.chat(PROMPTS[::-1], max_new_tokens=6)
    assert forward == backward[::-1]
    assert len(set(forward)) > 1  # different prompts, different continuations


def test_stops_at_end_of_turn(tiny):
    prompt = [tiny.render(PROMPTS[0])]
    ids = torch.tensor([tiny.tokenizer(prompt[0], add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        first_id = int(tiny.model(input_ids=ids).logits[0, -1].argmax())
    saved = tiny.model.generation_config.eos_token_id
    try:  # make the model's first greedy token an end-of-turn token: generation must stop there
        tiny.model.generation_config.eos_token_id = [first_id, tiny.tokenizer.eos_token_id]
        stopped = generate(tiny.model, tiny.tokenizer, prompt, max_new_tokens=4)[0]
    finally:
        tiny.model.generation_config.eos_token_id = saved
    assert stopped.finish_reason == "stop" and stopped.text == "" and stopped.completion_tokens == 1


def test_seeded_sampling_is_reproducible_and_leaves_the_global_rng_alone(tiny):
    state = torch.get_rng_state()
    a = tiny.chat(PROMPTS[:3], max_new_tokens=8, temperature=1.0, seed=1)
    b = tiny.chat(PROMPTS[:3], max_new_tokens=8, temperature=1.0, seed=1)
    c = tiny.chat(PROMPTS[:3], max_new_tokens=8, temperature=1.0, seed=2)
    assert a == b and a != c
    assert torch.equal(state, torch.get_rng_state())


def _manual_logprob(tiny, conv, continuation):
    p = tiny.tokenizer(tiny.render(conv), add_special_tokens=False)["input_ids"]
    c = tiny.tokenizer(continuation, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(tiny.model(input_ids=torch.tensor([p + c])).logits[0].float(), -1)
    return float(sum(logp[len(p) + k - 1, c[k]] for k in range(len(c))))


def test_logprobs_match_a_single_forward_pass(tiny):
    convs = [PROMPTS[0]] * 3 + [PROMPTS[1], PROMPTS[2]]  # three share a prompt (and its KV cache)
    conts = ["Rating: 1", "Rating: 5", "Paris is a big city", "x", "Rating: 10"]
    got = tiny.logprobs(convs, conts)
    want = [_manual_logprob(tiny, c, t) for c, t in zip(convs, conts)]
    assert got == pytest.approx(want, abs=1e-3)
    assert got[0] != got[1]
    rendered = [tiny.render(c) for c in convs]
    one_by_one = continuation_logprobs(tiny.model, tiny.tokenizer, rendered, conts, batch_size=1)
    assert one_by_one == pytest.approx(got, abs=1e-3)


def test_logprobs_reject_mismatched_or_empty_input(tiny):
    with pytest.raises(ValueError):
        tiny.logprobs(PROMPTS[:2], ["a"])
    with pytest.raises(ValueError):
        tiny.logprobs(PROMPTS[:1], [""])


def test_render_chat_uses_the_template_or_a_plain_transcript(tiny):
    text = render_chat(tiny.tokenizer, [{"role": "user", "content": "Hi"}])
    assert "<|im_start|>user\nHi<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")

    class NoTemplate:
        chat_template = None

    plain = render_chat(NoTemplate(), [{"role": "user", "content": "Hi"}])
    assert plain == "user: Hi\nassistant: "
