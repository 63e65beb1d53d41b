"""Bradley-Terry heads recover a known reward; ensembles aggregate as documented."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.core.errors import ConfigError
from alignlab.rewards import raters, reward_models as rm


def _data(n=400, dim=20, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    w = np.zeros(dim)
    w[:3] = [1.5, -1.0, 0.5]
    return x, x @ w, rng


def test_bt_head_recovers_reward_ranking():
    x, true, rng = _data()
    groups = np.arange(len(x)) % 40
    pairs = raters.sample_pairs(groups, 3000, rng)
    labels = raters.compare(raters.RaterConfig(temperature=0.3), true[pairs[:, 0]], true[pairs[:, 1]], rng)
    model = rm.fit_bt_head(x, pairs, labels, l2=1.0)
    held = raters.sample_pairs(groups, 2000, np.random.default_rng(9))
    scores = model.score(x)
    assert rm.gold_accuracy(scores, true, held) > 0.9
    assert np.corrcoef(scores, true)[0, 1] > 0.95
    # a head fitted to flipped labels ranks the other way
    flipped = rm.fit_bt_head(x, pairs, 1 - labels, l2=1.0)
    assert rm.gold_accuracy(flipped.score(x), true, held) < 0.1


def test_ensemble_aggregates():
    x, true, rng = _data(seed=1)
    groups = np.arange(len(x)) % 40
    pairs = raters.sample_pairs(groups, 400, rng)
    labels = raters.compare(raters.RaterConfig(temperature=1.0), true[pairs[:, 0]], true[pairs[:, 1]], rng)
    ens = {agg: rm.fit_ensemble(x, pairs, labels, size=4, aggregate=agg, rng=np.random.default_rng(2))
           for agg in rm.AGGREGATES}
    members = ens["mean"].member_scores(x)
    assert members.shape == (4, len(x))
    assert not np.allclose(members[0], members[1])  # bootstrap makes members differ
    assert np.all(ens["min"].score(x) <= ens["mean"].score(x) + 1e-12)
    assert np.all(ens["mean-std"].score(x) <= ens["mean"].score(x) + 1e-12)
    with pytest.raises(ConfigError):
        rm.fit_ensemble(x, pairs, labels, size=2, aggregate="median")


def test_accuracy_counts_ties_half():
    scores = np.array([1.0, 1.0, 0.0])
    pairs = np.array([[0, 1], [0, 2], [2, 0]])
    assert rm.preference_accuracy(scores, pairs, np.array([1, 1, 1])) == pytest.approx((0.5 + 1 + 0) / 3)


@pytest.mark.parametrize("layer", [1, 2, -1])
def test_layer_states_stops_early_with_the_same_states(layer):
    """The early-stopping hook returns exactly hidden_states[layer] of a full forward (any layer, padded batch)."""
    torch = pytest.importorskip("torch")
    from alignlab.lm.models import ModelSpec, load
    from alignlab.lm.testing import cached_tiny_llama

    model, _ = load(ModelSpec(str(cached_tiny_llama()), dtype="float32", threads=1))
    ids = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.inference_mode():
        want = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[layer]
        got = rm.layer_states(model, ids, mask, layer)
    assert torch.equal(got, want)


def test_trl_reward_model_defaults_follow_the_model_size(tmp_path):
    pytest.importorskip("trl")
    from alignlab.lm.testing import cached_tiny_llama

    data = rm.comparisons_dataset(["What is 2 plus 3?", "Capital of Peru?"], ["5.", "Lima."], ["6.", "Cusco."])
    tiny = str(cached_tiny_llama())
    small = rm.train_trl_reward_model(tiny, data, str(tmp_path / "a"), max_steps=1, batch_size=2)
    assert small.args.gradient_checkpointing is False  # a small model: no recompute (lm.dpo.use_checkpointing)
    assert small.model.config._attn_implementation == "eager"
    forced = rm.train_trl_reward_model(tiny, data, str(tmp_path / "b"), max_steps=1, batch_size=2,
                                       gradient_checkpointing=True, attn_implementation="sdpa")
    assert forced.args.gradient_checkpointing is True and forced.model.config._attn_implementation == "sdpa"
