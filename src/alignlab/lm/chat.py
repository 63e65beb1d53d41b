"""The minimal chat-model interface the evaluations run against, and its local implementation.

A chat model answers a batch of conversations (`chat`) and, where the backend offers it,
scores given continuations (`logprobs`). The interface is deliberately as small as the one
inspect_ai's model API reduces to (UK AISI, inspect_ai `ModelAPI.generate`): anything that
can be wrapped in it can be evaluated, steered and fine-tuned models included.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

from alignlab.core.device import model_device
from alignlab.lm.generate import Generation, Message, continuation_logprobs, generate, render_chat
from alignlab.lm.prefix_cache import PrefixStore, generate_cached

Conversation = Sequence[Message]


def quiet_transformers() -> None:
    """No progress bars or advisory warnings from transformers (they garble CLI output)."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def dialogue_chunk(model: Any, cache_bytes: int, tokens: int = 256) -> int:
    """How many dialogues of `tokens` tokens the prefix store holds, as a power of two from 16 to 128.

    Larger decoding batches use the matrix units better (docs/benchmarks.md, behavioural evals), but a chunk whose
    caches overflow the store evicts the turns it is about to extend.
    """
    cfg = getattr(model, "config", None)
    try:
        heads = cfg.num_key_value_heads or cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        per_token = 2 * cfg.num_hidden_layers * heads * head_dim * next(model.parameters()).element_size()
    except (AttributeError, TypeError, StopIteration, ZeroDivisionError):
        return 64
    chunk = 16
    while chunk < 128 and 2 * chunk * tokens * per_token <= cache_bytes:
        chunk *= 2
    return chunk


@runtime_checkable
class ChatModel(Protocol):
    """What an evaluation needs from a model."""

    name: str
    supports_logprobs: bool

    def chat(self, messages_batch: Sequence[Conversation], max_new_tokens: int = 64,
             temperature: float = 0.0, seed: int = 0) -> list[str]:
        """The assistant's next reply to each conversation."""

    def logprobs(self, prompts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        """log P(continuation as the start of the assistant's reply | conversation), summed over tokens.

        Raises NotImplementedError where the backend cannot score (`supports_logprobs` False).
        """


class LocalChatModel:
    """A Hugging Face causal LM in this process (the embedded model, a local path or a cached id)."""

    supports_logprobs = True

    def __init__(self, model: Any, tokenizer: Any, name: str = "local", batch_size: int = 16,
                 prefix_cache: bool = True, cache_bytes: int = 1 << 30):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size = batch_size
        on_cpu = getattr(model_device(model), "type", "cpu") == "cpu"
        self.prefix_store = PrefixStore(cache_bytes) if prefix_cache and on_cpu else None
        """KV caches of earlier turns, reused by prompts that extend them (lm/prefix_cache.py). CPU only: its caches
        and sampler live in host memory; on a GPU generation goes through transformers' `generate`."""
        self.dialogue_chunk = dialogue_chunk(model, cache_bytes)
        """Dialogues a multi-turn protocol plays together, and the decoding batch (bounds the prefix store's working
        set: 128 for SmolLM2-135M in bf16, 64 in fp32)."""

    @classmethod
    def load(cls, spec: Any = "embedded", batch_size: int = 16, prefix_cache: bool = True) -> "LocalChatModel":
        """Load through `alignlab.lm.models.load` (offline; ModelSpec or its name)."""
        from alignlab.lm.models import ModelSpec, load

        spec = ModelSpec(spec) if isinstance(spec, str) else spec
        quiet_transformers()
        model, tokenizer = load(spec)
        return cls(model, tokenizer, name=spec.name, batch_size=batch_size, prefix_cache=prefix_cache)

    def render(self, messages: Conversation, add_generation_prompt: bool = True) -> str:
        return render_chat(self.tokenizer, messages, add_generation_prompt)

    def generate(self, messages_batch: Sequence[Conversation], max_new_tokens: int = 64,
                 temperature: float = 0.0, seed: int = 0) -> list[Generation]:
        """Completions with token counts and finish reasons (what the server reports)."""
        prompts = [self.render(m) for m in messages_batch]
        if self.prefix_store is not None:
            return generate_cached(self.model, self.tokenizer, prompts, self.prefix_store,
                                   max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                                   prefill_batch=min(self.batch_size, 8),
                                   decode_batch=max(self.batch_size, self.dialogue_chunk or 64))
        return generate(self.model, self.tokenizer, prompts, max_new_tokens=max_new_tokens,
                        temperature=temperature, seed=seed, batch_size=self.batch_size)

    def chat(self, messages_batch: Sequence[Conversation], max_new_tokens: int = 64,
             temperature: float = 0.0, seed: int = 0) -> list[str]:
        return [g.text for g in self.generate(messages_batch, max_new_tokens, temperature, seed)]

    def logprobs(self, prompts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        rendered = [self.render(m) for m in prompts]
        return continuation_logprobs(self.model, self.tokenizer, rendered, list(continuations),
                                     batch_size=self.batch_size)
