"""Tiny random Llama models with the embedded tokenizer, for fast tests of the plumbing.

A 2-layer Llama with hidden size 64 and SmolLM2's tokenizer runs generation and scoring in
milliseconds; its outputs are noise, so tests use
it only for shapes, ordering, caching and protocol plumbing, never for behaviour.
"""

from __future__ import annotations

from pathlib import Path


def tiny_llama(path: str | Path, seed: int = 0, layers: int = 2, hidden: int = 64,
               init_range: float = 0.5) -> Path:
    """Build, save and return the folder of a random tiny Llama (loadable with `lm.models.load`).

    `init_range` is larger than a trained model's 0.02 so that logits are well separated and
    greedy decoding does not hinge on float rounding (batched and single runs agree).
    """
    from alignlab.lm.models import embedded_path, offline

    offline()
    from alignlab.lm.chat import quiet_transformers

    quiet_transformers()
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    if (path / "config.json").exists():
        return path
    tokenizer = AutoTokenizer.from_pretrained(embedded_path())
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=2048, tie_word_embeddings=True, initializer_range=init_range,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def cached_tiny_llama() -> Path:
    """The tiny test model, built once under the alignlab cache (ALIGNLAB_CACHE) and reused."""
    from alignlab.lm.models import cache_dir

    return tiny_llama(cache_dir() / "models" / "tiny-llama-2x64-test-v1")
