"""The sae-steering technique on the tiny random Llama: config errors name the field, the auto feature is ranked on
the training split only, the added vector is the feature's decoder row in residual units, multiplier 0 is a no-op,
and the SAE and the ranking are cached on disk."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from alignlab.core.errors import ConfigError  # noqa: E402
from alignlab.core.technique import make_technique  # noqa: E402
from alignlab.interp import caa  # noqa: E402
from alignlab.interp import sae_steering as SS  # noqa: E402

CHEAP = "layer=1, items=4, steps=10, texts=16, batch_tokens=64, expansion=1"


@pytest.fixture(scope="module")
def tiny():
    from alignlab.lm.chat import LocalChatModel
    from alignlab.lm.testing import cached_tiny_llama

    return LocalChatModel.load(str(cached_tiny_llama()))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    import alignlab.lm.models as models

    monkeypatch.setattr(models, "cache_dir", lambda: tmp_path)
    return tmp_path


@pytest.mark.parametrize("args,field", [("layer=-1", "layer"), ("feature=-2", "feature"),
                                        ("multiplier=11", "multiplier"), ("multiplier=nan", "multiplier"),
                                        ("steps=0", "steps"), ("expansion=0", "expansion"), ("texts=2", "texts"),
                                        ("items=-1", "items"), ("direction=other", "direction"), ("l1=-1", "l1"),
                                        ("batch_tokens=0", "batch_tokens")])
def test_bad_config_names_the_field(args, field):
    with pytest.raises(ConfigError, match=field):  # ours: "sae-steering: FIELD ..."; a Literal: the parser's
        make_technique(f"sae-steering({args})")


def test_layer_and_feature_out_of_range_for_the_model(tiny, cache):
    with pytest.raises(ConfigError, match="layer 5 is past"):
        make_technique(f"sae-steering({CHEAP.replace('layer=1', 'layer=5')})").apply(tiny)
    with pytest.raises(ConfigError, match=r"feature must be -1 \(auto\) or in 0\.\.63"):
        make_technique(f"sae-steering({CHEAP}, feature=64)").apply(tiny)
    assert not (cache / "sae").exists()  # refused before any SAE was trained


def test_endpoints_are_refused():
    from alignlab.core.errors import UserError

    tech = make_technique("sae-steering")
    assert tech.supports({"model": "openai:gpt-4o"})
    assert tech.supports({"model": "embedded"}) is None
    with pytest.raises(UserError, match="needs a local Hugging Face chat model"):
        tech.apply(object())


def test_auto_feature_is_ranked_on_the_training_split_only(tiny, cache, monkeypatch):
    splits, read = [], []
    real_split, real_pairs = caa.factual_split, caa.pair_texts

    def spy_split(part):
        splits.append(part)
        return real_split(part)

    def spy_pairs(render, items):
        read.extend(it.id for it in items)
        return real_pairs(render, items)

    monkeypatch.setattr(caa, "factual_split", spy_split)
    monkeypatch.setattr(caa, "pair_texts", spy_pairs)
    out = make_technique(f"sae-steering({CHEAP})").apply(tiny)
    assert splits == ["train"]
    train_ids = [it.id for it in real_split("train")[:4]]
    assert read and set(read) == set(train_ids)
    assert all(caa.split_of(i) == "train" for i in read)
    # the chosen feature is the argmax of the training-pair correlations, recomputed here from scratch
    sae, info = SS.load_or_train_sae(tiny.model, tiny.tokenizer, make_technique(f"sae-steering({CHEAP})")
                                     .config.sae_settings(), 16)
    acts, labels = SS.pair_feature_acts(tiny.model, tiny.tokenizer, tiny.render, sae, 1, real_split("train")[:4])
    from alignlab.interp.feature_browser import correlations

    r = correlations(acts.numpy(), labels)
    assert out.steering["feature"] == int(r.argmax())
    assert out.steering["correlation"] == pytest.approx(float(r.max()), abs=1e-6)
    assert out.steering["auto"] and out.steering["pairs"] == 8


def test_vector_is_the_decoder_row_in_residual_units_and_scaled_by_the_residual_norm(tiny, cache):
    from alignlab.interp.hooks import add_vector, hooks

    tech = make_technique(f"sae-steering({CHEAP}, feature=7, multiplier=-0.5)")
    vec, info = tech.vector(tiny)
    sae, _ = SS.load_or_train_sae(tiny.model, tiny.tokenizer, tech.config.sae_settings(), 16)
    assert torch.allclose(vec, sae.W_dec[7] / sae.scale)
    # undoing the input normalization: decoding one unit of feature 7 moves the raw reconstruction by this vector
    f = torch.zeros(1, sae.W_dec.shape[0])
    one = f.clone()
    one[0, 7] = 1.0
    assert torch.allclose((sae.decode(one) - sae.decode(f))[0] / sae.scale, vec, atol=1e-6)
    assert info["feature"] == 7 and not info["auto"] and info["norm"] == pytest.approx(float(vec.norm()))
    assert info["resid_norm"] == pytest.approx(sae.W_dec.shape[1] ** 0.5 / sae.scale)
    out = tech.apply(tiny)
    ids = tiny.tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.inference_mode():
        steered = out.model(input_ids=ids).logits
        with hooks(tiny.model, {"resid_post.1": add_vector(vec / vec.norm(), -0.5 * info["resid_norm"])}):
            manual = tiny.model(input_ids=ids).logits
    assert torch.allclose(steered, manual, atol=1e-5)
    assert out.steering["added_norm"] == pytest.approx(0.5 * info["resid_norm"])


def test_multiplier_zero_leaves_logits_unchanged_and_nonzero_changes_them(tiny, cache):
    ids = tiny.tokenizer("Water boils at", return_tensors="pt").input_ids
    with torch.inference_mode():
        plain = tiny.model(input_ids=ids).logits
        zero = make_technique(f"sae-steering({CHEAP}, multiplier=0)").apply(tiny).model(input_ids=ids).logits
        moved = make_technique(f"sae-steering({CHEAP}, multiplier=-0.25)").apply(tiny).model(input_ids=ids).logits
    assert torch.equal(zero, plain)
    assert (moved - plain).abs().max() > 1e-3
    assert torch.equal(tiny.model(input_ids=ids).logits, plain)  # the base on the same weights stays unsteered


def test_sae_and_ranking_are_cached_and_keyed_by_settings(tiny, cache):
    first = make_technique(f"sae-steering({CHEAP})").apply(tiny).steering
    second = make_technique(f"sae-steering({CHEAP}, multiplier=0.5)").apply(tiny).steering
    assert not first["sae_cached"] and not first["ranking_cached"]
    assert second["sae_cached"] and second["ranking_cached"]
    assert second["feature"] == first["feature"] and second["norm"] == first["norm"]
    assert len(list((cache / "sae").glob("*-L1-*.pt"))) == 1
    third = make_technique(f"sae-steering({CHEAP.replace('steps=10', 'steps=11')})").apply(tiny).steering
    assert not third["sae_cached"]
    assert len(list((cache / "sae").glob("*-L1-*.pt"))) == 2
    assert not list((cache / "sae").glob("*.tmp*"))


def test_random_control_has_the_size_and_not_the_direction(tiny, cache):
    feat = make_technique(f"sae-steering({CHEAP}, feature=7)").vector(tiny)[0]
    rand, info = make_technique(f"sae-steering({CHEAP}, feature=7, direction=random)").vector(tiny)
    assert info["direction"] == "random" and torch.isclose(rand.norm(), feat.norm())
    assert abs(float(torch.nn.functional.cosine_similarity(rand, feat, dim=0))) < 0.5
