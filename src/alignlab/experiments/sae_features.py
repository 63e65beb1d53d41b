"""Sparse autoencoders on the embedded model's residual stream: how much of the model they keep (Bricken et al. 2023,
"Towards Monosemanticity"; Cunningham et al. 2023, arXiv:2309.08600).

One cell per layer: activations of `resid_post.LAYER` over the project's own text corpus (interp/sae.py: the evals'
data and the generated task questions, split by a fixed hash), a ReLU SAE trained on the training texts, and on the
held-out texts its explained variance, L0, dead features and the cross-entropy loss recovered when its reconstruction
replaces the layer's output (against zero-ablating it). Specified: explained variance (what the SAE's training loss
optimizes); intended: the loss recovered (whether the model still works on the reconstruction).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from alignlab.core.errors import ConfigError
from alignlab.core.experiment import Experiment, ExperimentConfig
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.registry import register
from alignlab.core.section import Figure, Table, figure_svg, new_figure


@dataclasses.dataclass(frozen=True)
class SAEFeaturesConfig(ExperimentConfig):
    model: str = "embedded"
    """Model whose residual stream is read: embedded, or a local Hugging Face model folder."""
    layers: tuple[int, ...] = (9, 18)
    """Decoder layers (0-based) whose output gets an SAE, one cell each."""
    expansion: int = 4
    """Features per residual dimension."""
    l1: float = 5.0
    """L1 coefficient (normalized activations, SAELens' scale)."""
    steps: int = 1500
    """Optimizer steps per SAE."""
    batch_tokens: int = 512
    """Tokens per step."""
    texts: int = 0
    """Texts per split (0: the whole corpus)."""
    browser_items: int = 40
    """Factual items whose A/B sycophancy pairs rank features for the browser (0: no browser)."""
    browser_prompts: int = 48
    """Red-team prompts whose judged refusals rank features for the browser."""
    browser_features: int = 3
    """Features shown per behaviour."""

    @classmethod
    def quick(cls) -> "SAEFeaturesConfig":
        return cls(layers=(9,), steps=150, texts=64, browser_items=16, browser_prompts=12)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.layers or min(self.layers) < 0:
            raise ConfigError(f"sae-features: layers must be a non-empty list of layers >= 0 (got {self.layers})")
        if self.model != "embedded" and not (Path(self.model).expanduser() / "config.json").exists():
            raise ConfigError(f"sae-features: model must be 'embedded' or a local model folder with a config.json "
                              f"(got {self.model!r})")
        if min(self.browser_items, self.browser_prompts) < 0 or self.browser_features < 1:
            raise ConfigError("sae-features: browser_items and browser_prompts must be >= 0, browser_features >= 1")
        if self.texts < 0 or self.texts in (1, 2, 3):
            raise ConfigError(f"sae-features: texts must be 0 (all) or >= 4 (got {self.texts})")
        self.settings(self.layers[0])  # validates expansion, l1, steps, batch_tokens

    def settings(self, layer: int) -> Any:
        from alignlab.interp.sae import SAESettings

        return SAESettings(layer=layer, expansion=self.expansion, l1=self.l1, steps=self.steps,
                           batch_tokens=self.batch_tokens)


@register("experiment", "sae-features-v0")
class SAEFeatures(Experiment):
    title = "Sparse autoencoders on the residual stream: explained variance, sparsity, loss recovered"
    summary = ("A ReLU sparse autoencoder is trained on the embedded model's residual stream at a layer, over text "
               "the project ships (the evals' prompts and replies, the generated task questions). On held-out texts: "
               "the variance of the activations it explains, how many features fire per token (L0), the features "
               "that never fire, and how much of the model's next-token loss survives when the reconstruction "
               "replaces the layer's output, against replacing it with zeros.")
    source = ("Bricken et al. 2023, \"Towards Monosemanticity\" (transformer-circuits.pub); Cunningham et al. 2023, "
              "arXiv:2309.08600")
    specified_label = "explained variance of held-out activations (what the SAE's loss optimizes)"
    intended_label = "cross-entropy loss recovered with the reconstruction spliced in (vs zero-ablation)"
    Config = SAEFeaturesConfig
    default_seeds = 1
    quick_seeds = 1

    @classmethod
    def smoke_config(cls) -> SAEFeaturesConfig:
        return cls.Config(layers=(9,), steps=20, batch_tokens=128, texts=24, browser_items=4, browser_prompts=6,
                          browser_features=1)

    def cells(self) -> list[dict[str, Any]]:
        c = self.config
        return [{"model": c.model, "layer": layer, "expansion": c.expansion, "l1": c.l1, "steps": c.steps,
                 "batch_tokens": c.batch_tokens, "texts": c.texts, "browser_items": c.browser_items,
                 "browser_prompts": c.browser_prompts, "browser_features": c.browser_features} for layer in c.layers]

    def table_columns(self) -> list[str]:
        return ["layer"]

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        import torch

        from alignlab.interp import sae as S
        from alignlab.interp.hooks import n_layers
        from alignlab.lm.models import load

        model, tok = load(params["model"])
        if params["layer"] >= n_layers(model):
            raise ConfigError(f"sae-features: layer {params['layer']} is past the model's last ({n_layers(model) - 1})")
        settings = dataclasses.replace(self.Config(**{k: v for k, v in params.items() if k != "layer"},
                                                   layers=(params["layer"],)).settings(params["layer"]), seed=seed)
        texts = S.corpus(params["texts"])
        ids = {k: S.encode(tok, v, settings.max_tokens) for k, v in texts.items()}
        train_acts, train_where = S.activations(model, tok, ids["train"], settings.layer)
        test_acts, test_where = S.activations(model, tok, ids["test"], settings.layer)
        sae, info = S.train(train_acts, settings)
        metrics = S.recon_metrics(sae, test_acts, train_acts)
        metrics.update(S.ce_losses(model, tok, ids["test"], settings.layer, sae))
        metrics.update({"specified": metrics["explained_variance"], "intended": metrics["ce_recovered"],
                        "train_tokens": float(len(train_acts)), "test_tokens": float(len(test_acts))})
        metrics["gap"] = metrics["specified"] - metrics["intended"]
        torch.save(sae.state(), workdir / f"sae-resid_post.{settings.layer}.pt")
        # wall times are data, not metrics: a metric is what the same seed must reproduce
        data: dict[str, Any] = {"log": info["log"], "texts": {k: len(v) for k, v in texts.items()},
                                "step_ms": info["step_ms"], "train_s": info["train_s"]}
        if params["browser_items"] and params["browser_prompts"]:
            from alignlab.interp.feature_browser import browse

            test_where[:, 0] += len(ids["train"])
            data["browser"] = browse(model, tok, sae, settings.layer, torch.cat([train_acts, test_acts]),
                                     torch.cat([train_where, test_where]), ids["train"] + ids["test"],
                                     params["browser_items"], params["browser_prompts"], params["browser_features"])
        return CellResult(metrics=metrics, data=data,
                          artifacts=[f"sae-resid_post.{settings.layer}.pt"])

    # -- report ----------------------------------------------------------------------------

    def tables(self, records: list[RunRecord]) -> list[Table]:
        recs = sorted(self.analysed(records), key=lambda r: r.config["layer"])
        if not recs:
            return []
        rows = [[r.config["layer"], int(r.metrics["d_sae"]), f"{r.metrics['explained_variance']:.3f}",
                 f"{r.metrics['l0']:.1f}", f"{r.metrics['dead_share']:.3f}", f"{r.metrics['ce_clean']:.3f}",
                 f"{r.metrics['ce_sae']:.3f}", f"{r.metrics['ce_zero']:.3f}", f"{r.metrics['ce_recovered']:.3f}",
                 int(r.metrics["train_tokens"]), int(r.metrics["test_tokens"])] for r in recs]
        return [Table("SAE quality per layer (held-out texts)",
                      ["layer", "features", "explained variance", "L0", "dead share", "CE clean", "CE with SAE",
                       "CE zero-ablated", "CE recovered", "train tokens", "held-out tokens"], rows,
                      "Dead: never active on a training or held-out token. CE recovered = (CE zero - CE SAE) / "
                      "(CE zero - CE clean), every position but the first spliced.")]

    def figures(self, records: list[RunRecord]) -> list[Figure]:
        recs = sorted(self.analysed(records), key=lambda r: r.config["layer"])
        if not recs:
            return []
        fig, axes = new_figure(width=4.6, height=2.6)
        ax = axes[0, 0]
        for k, r in enumerate(recs):
            log = r.data["log"]
            ax.plot([e["step"] for e in log], [e["mse"] for e in log], "-o", ms=2, color=f"C{k}",
                    label=f"layer {r.config['layer']}")
        ax.set_xlabel("step", fontsize=7)
        ax.set_ylabel("reconstruction MSE (batch)", fontsize=7)
        ax.set_yscale("log")
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6, frameon=False)
        fig.tight_layout()
        out = [Figure("SAE training", figure_svg(fig), "Summed squared error per token on normalized activations.")]
        from alignlab.interp.feature_browser import render

        for r in recs:
            if r.data.get("browser"):
                out.append(Figure(f"Feature browser, layer {r.config['layer']}", render(r.data["browser"]["groups"]),
                                  "Features ranked by the correlation of their last-token activation with the "
                                  "behaviour; each row a top-activating context from the corpus, tokens shaded by "
                                  "the feature's activation (hover: the value), the peak underlined."))
        return out

    def findings(self, records: list[RunRecord]) -> list[str]:
        out = []
        for r in sorted(self.analysed(records), key=lambda r: r.config["layer"]):
            m = r.metrics
            out.append(f"Layer {r.config['layer']}: explained variance {m['explained_variance']:.3f}, L0 "
                       f"{m['l0']:.1f} of {int(m['d_sae'])} features, {100 * m['dead_share']:.1f}% dead, "
                       f"{100 * m['ce_recovered']:.1f}% of the loss recovered (CE {m['ce_clean']:.3f} clean, "
                       f"{m['ce_sae']:.3f} with the SAE, {m['ce_zero']:.3f} zero-ablated).")
        return out
