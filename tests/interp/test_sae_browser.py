"""The SAE, its metrics and the feature browser: correlations against numpy, contexts on a hand-made activation
table, the rendered page escaped, script-free and drawn by headless Chromium with the peak token shaded darkest."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.core.errors import ConfigError
from alignlab.interp import feature_browser as FB
from alignlab.interp import sae as S
from tests.reports.conftest import chrome, needs_chromium


class _Tok:
    def decode(self, ids):
        return "".join(f"<t{i}>" if i == 7 else f"w{i} " for i in ids)


def test_correlations_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6))
    x[:, 5] = 0.0  # a constant (dead) feature
    y = rng.integers(0, 2, 50)
    r = FB.correlations(x, y)
    assert np.allclose(r[:5], [np.corrcoef(x[:, j], y)[0, 1] for j in range(5)]) and r[5] == 0
    x[:, 2] = y * 3.0
    assert FB.top_features(x, y, 2)[0]["feature"] == 2 and FB.top_features(x, y, 2)[0]["r"] == pytest.approx(1)


def test_top_contexts_and_render():
    ids = [[1, 2, 3, 7], [4, 5, 6]]
    where = torch.tensor([[0, 1], [0, 2], [0, 3], [1, 1], [1, 2]])
    acts = torch.tensor([[0.0, 1.0], [0.5, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    ctx = FB.top_contexts(acts, where, ids, _Tok(), feature=0, k=5, before=2, after=1)
    assert [c["max"] for c in ctx] == [2.0, 1.0]  # one per text, strongest first; zeros never listed
    assert ctx[0]["tokens"][ctx[0]["at"]] == ("<t7>", 2.0) and ctx[0]["tokens"][0] == ("w2 ", 0.0)
    feats = [{"feature": 0, "r": 0.5, "mean_pos": 1.0, "mean_neg": 0.1, "fires_pos": 1.0, "fires_neg": 0.2,
              "contexts": ctx}]
    page = FB.render([{"title": "Features of <x>", "caption": "c", "features": feats}])
    assert "&lt;t7&gt;" in page and "<t7>" not in page and "&lt;x&gt;" in page
    assert "<script" not in page and "http" not in page


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the project's default for CPU work (two threads spin-wait on a busy machine)
    yield
    torch.set_num_threads(before)


def test_sae_train_and_metrics(one_thread):
    g = torch.Generator().manual_seed(0)
    dirs = torch.randn(8, 16, generator=g)
    codes = (torch.rand(600, 8, generator=g) < 0.15).float() * torch.rand(600, 8, generator=g) * 4
    acts = codes @ dirs  # sparse combinations of 8 directions
    sae, info = S.train(acts[:500], S.SAESettings(layer=0, expansion=2, l1=1.0, lr=3e-3, steps=200,
                                                  batch_tokens=128))
    m = S.recon_metrics(sae, acts[500:], acts[:500])
    assert m["explained_variance"] > 0.8 and m["l0"] < 16 and m["d_sae"] == 32 and info["step_ms"] > 0
    assert torch.allclose(sae.reconstruct(acts[:3]).norm(), acts[:3].norm(), rtol=0.3)
    with pytest.raises(ConfigError, match="steps"):
        S.SAESettings(steps=0)
    c = S.corpus(limit=5)
    assert len(c["train"]) == len(c["test"]) == 5 and not set(c["train"]) & set(c["test"])


@needs_chromium
def test_browser_renders_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By

    ctx = [{"max": 2.0, "at": 1, "tokens": [("a ", 0.5), ("peak", 2.0), (" z", 0.0)]}]
    feats = [{"feature": 3, "r": 0.4, "mean_pos": 1.0, "mean_neg": 0.1, "fires_pos": 1.0, "fires_neg": 0.2,
              "contexts": ctx}]
    page = tmp_path / "browser.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
                    + FB.render([{"title": "Features of refusal", "features": feats}]) + "</body></html>")
    driver = chrome(tmp_path / "profile")
    try:
        driver.get(page.as_uri())
        feature = driver.find_element(By.CSS_SELECTOR, '.feature[data-feature="3"]')
        toks = feature.find_elements(By.CSS_SELECTOR, ".tok")
        assert [t.text for t in toks] == ["a ", "peak", " z"] and toks[1].get_attribute("title") == "2.000"
        alpha = [float(t.value_of_css_property("background-color").rstrip(")").split(",")[-1])
                 if "rgba" in t.value_of_css_property("background-color") else 1.0 for t in toks]
        assert alpha[1] == 1.0 and 0 < alpha[0] < 1 and toks[2].value_of_css_property("background-color") in (
            "rgba(255, 120, 0, 0)", "rgba(0, 0, 0, 0)")
        assert toks[1].value_of_css_property("border-bottom-style") == "solid" and toks[1].size["width"] > 0
    finally:
        driver.quit()
