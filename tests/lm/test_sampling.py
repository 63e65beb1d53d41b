"""The partial-sort top-p processor keeps exactly the tokens transformers' warpers keep, and sampling through it
draws the same tokens under the same seed."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from transformers import TemperatureLogitsWarper, TopPLogitsWarper  # noqa: E402

from alignlab.lm.sampling import TemperatureTopP  # noqa: E402


def reference(scores, temperature, top_p):
    ids = torch.zeros((scores.shape[0], 1), dtype=torch.long)
    tempered = TemperatureLogitsWarper(temperature)(ids, scores)
    return tempered if top_p >= 1 else TopPLogitsWarper(top_p)(ids, tempered)  # generate adds no warper at 1.0


@pytest.mark.parametrize("temperature,top_p", [(0.8, 0.95), (1.0, 0.5), (1.3, 0.99), (0.7, 1.0)])
def test_same_kept_tokens_and_values_as_transformers(temperature, top_p):
    g = torch.Generator().manual_seed(0)
    peaked = torch.randn(6, 5000, generator=g) * 10  # nucleus inside the head of 64
    flat = torch.randn(6, 5000, generator=g) * 0.1  # nucleus far past the head: the full-sort fallback
    scores = torch.cat([peaked, flat])
    ids = torch.zeros((scores.shape[0], 1), dtype=torch.long)
    ours = TemperatureTopP(temperature, top_p)(ids, scores)
    ref = reference(scores, temperature, top_p)
    assert torch.equal(torch.isinf(ours), torch.isinf(ref))
    assert torch.equal(ours[~torch.isinf(ours)], ref[~torch.isinf(ref)])
    kept = (~torch.isinf(ours)).sum(-1)
    if top_p < 1:
        assert kept[:6].max() <= 64 and kept[6:].min() > 64  # both paths were exercised


def test_keeps_at_least_the_top_token():
    scores = torch.tensor([[10.0, 0.0, -1.0, -2.0]])
    out = TemperatureTopP(1.0, 0.01)(torch.zeros((1, 1), dtype=torch.long), scores)
    assert torch.isinf(out).tolist() == [[False, True, True, True]]


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="temperature"):
        TemperatureTopP(0.0, 0.9)
    with pytest.raises(ValueError, match="top_p"):
        TemperatureTopP(1.0, 0.0)


def test_sampling_draws_the_same_tokens_as_transformers_top_p():
    """Same seed, same kept set, same probabilities: `generate` samples the same continuation."""
    from alignlab.lm.models import ModelSpec, load
    from alignlab.lm.sampling import sampling_kwargs
    from alignlab.lm.testing import cached_tiny_llama

    model, tok = load(ModelSpec(str(cached_tiny_llama()), dtype="float32", threads=1))
    ids = torch.tensor([tok("The capital of France is", add_special_tokens=False)["input_ids"]] * 4)
    common = dict(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, pad_token_id=0)
    torch.manual_seed(5)
    ref = model.generate(**common, do_sample=True, temperature=0.8, top_p=0.9, top_k=0)
    torch.manual_seed(5)
    ours = model.generate(**common, **sampling_kwargs(0.8, 0.9))
    assert torch.equal(ref, ours)


def test_shared_prefill_continues_exactly_like_a_full_prefill():
    """Greedy decoding from the shared prompt cache gives what generate gives from scratch, with left padding
    and several distinct prompts repeated in one batch."""
    from alignlab.lm.models import ModelSpec, load
    from alignlab.lm.sampling import shared_prefill
    from alignlab.lm.testing import cached_tiny_llama

    model, tok = load(ModelSpec(str(cached_tiny_llama()), dtype="float32", threads=1))
    prompts = [[5, 6, 7, 8, 9, 10], [11, 12, 13]]
    rows = [0, 0, 1, 0, 1, 1]
    width = max(len(p) for p in prompts)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, k in enumerate(rows):
        ids[r, width - len(prompts[k]):] = torch.tensor(prompts[k])
        mask[r, width - len(prompts[k]):] = 1
    common = dict(input_ids=ids, attention_mask=mask, max_new_tokens=8, min_new_tokens=8, do_sample=False,
                  pad_token_id=0)
    with torch.inference_mode():
        ref = model.generate(**common)
        ours = model.generate(**common, past_key_values=shared_prefill(model, ids, mask))
    assert torch.equal(ref, ours)
