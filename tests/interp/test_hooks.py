"""Hook points on the tiny random Llama: names, reads that match the model's own hidden states and nnsight's,
edits that change the output, and hooks that are gone after the block, exceptions and other threads included."""

from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")

from alignlab.interp import hooks as H  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    from alignlab.lm.models import load
    from alignlab.lm.testing import cached_tiny_llama

    return load(str(cached_tiny_llama()))


def _ids(tokenizer, text="The capital of France is Paris."):
    return torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])


def test_hook_point_names_and_errors(tiny):
    model, _ = tiny
    assert H.n_layers(model) == 2
    assert H.hook_points(model) == ["resid_pre.0", "resid_post.0", "attn_out.0", "mlp_out.0",
                                    "resid_pre.1", "resid_post.1", "attn_out.1", "mlp_out.1"]
    assert H.parse_point("resid_post.5") == ("resid_post", 5)
    with pytest.raises(H.HookPointError, match="valid: KIND.LAYER"):
        H.parse_point("resid.5")
    with pytest.raises(H.HookPointError, match="2 layers"):
        H.module_for(model, "resid_post.2")


def test_capture_matches_hidden_states_and_the_block_structure(tiny):
    model, tok = tiny
    ids = _ids(tok)
    with torch.no_grad():
        ref = model(input_ids=ids, output_hidden_states=True).hidden_states
        n0 = H.active_hooks(model)  # transformers keeps hooks of its own (output recording)
        with H.capture(model, H.hook_points(model)) as acts:
            model(input_ids=ids)
    assert H.active_hooks(model) == n0
    for i in range(2):
        assert torch.equal(acts[f"resid_pre.{i}"][0], ref[i])
        if i < 1:  # the last entry of hidden_states is after the final norm
            assert torch.equal(acts[f"resid_post.{i}"][0], ref[i + 1])
        # the residual stream adds the attention and MLP outputs
        total = acts[f"resid_pre.{i}"][0] + acts[f"attn_out.{i}"][0] + acts[f"mlp_out.{i}"][0]
        assert torch.allclose(total, acts[f"resid_post.{i}"][0], atol=1e-5)


def test_nnsight_reads_the_same_activations(tiny):
    pytest.importorskip("nnsight")
    model, tok = tiny
    text = "Water boils at 100 degrees."
    n0 = H.active_hooks(model)
    with torch.no_grad(), H.capture(model, ["resid_post.0", "resid_post.1"]) as acts:
        model(input_ids=_ids(tok, text), use_cache=False)
    ref = H.capture_nnsight(model, tok, text, [0, 1])
    assert torch.equal(ref[0], acts["resid_post.0"][0][0]) and torch.equal(ref[1], acts["resid_post.1"][0][0])
    assert H.active_hooks(model) == n0


def test_residuals_reads_each_texts_last_token_whatever_the_padding(tiny):
    model, tok = tiny
    texts = ["Short.", "A much longer sentence with several more tokens in it."]
    batched = H.residuals(model, tok, texts, [0, 1], batch_size=2)
    for k, t in enumerate(texts):
        with torch.no_grad():
            hs = model(input_ids=_ids(tok, t), output_hidden_states=True).hidden_states
        assert torch.allclose(batched[k, 0], hs[1][0, -1], atol=1e-4)


def test_edits_change_the_output_and_are_removed_even_after_an_exception(tiny):
    model, tok = tiny
    ids = _ids(tok)
    with torch.no_grad():
        before = model(input_ids=ids).logits
        n0 = H.active_hooks(model)
        vec = torch.randn(model.config.hidden_size)
        with H.hooks(model, {"resid_post.0": H.add_vector(vec, 3.0)}):
            steered = model(input_ids=ids).logits
        assert not torch.allclose(before, steered)
        with pytest.raises(RuntimeError, match="boom"):
            with H.hooks(model, {"resid_pre.1": H.add_vector(vec), "mlp_out.0": lambda t: t * 0}):
                assert H.active_hooks(model) == n0 + 2
                raise RuntimeError("boom")
        assert H.active_hooks(model) == n0
        with pytest.raises(H.HookPointError):  # a bad point registers nothing
            with H.hooks(model, {"resid_post.0": H.add_vector(vec), "resid_post.9": H.add_vector(vec)}):
                pass
        assert H.active_hooks(model) == n0
        assert torch.equal(model(input_ids=ids).logits, before)


def test_this_thread_only_leaves_other_threads_unsteered(tiny):
    model, tok = tiny
    ids = _ids(tok)
    with torch.no_grad():
        before = model(input_ids=ids).logits
        other = {}
        with H.hooks(model, {"resid_post.0": H.add_vector(torch.ones(model.config.hidden_size), 5.0)},
                     this_thread_only=True):
            t = threading.Thread(target=lambda: other.setdefault("logits", model(input_ids=ids).logits))
            t.start()
            t.join()
            mine = model(input_ids=ids).logits
    assert torch.equal(other["logits"], before) and not torch.allclose(mine, before)
