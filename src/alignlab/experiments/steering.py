"""Steering against sycophancy: contrastive activation addition swept over layers and multipliers on held-out items,
beside a random vector of equal norm and the system-prompt baseline (Rimsky et al. 2023, arXiv:2312.06681; Turner et
al. 2023, arXiv:2308.10248; the sycophancy protocol of Sharma et al. 2023, arXiv:2310.13548).

Every cell is one model: the embedded model unsteered, or with `steering(layer, multiplier, vector)` (the technique
in techniques/steering.py; its vector comes from the training half of the factual items only, interp/caa.py), or,
through the `chat-model` slot, the unsteered model with another technique (default: the anti-sycophancy system
prompt). Each is measured on the held-out half: Rimsky et al.'s A/B measure (the probability of the sycophantic
letter), the sycophancy-answer eval's generated replies when the user suggests a wrong answer (the share naming it:
the sycophancy rate) and its control arm without a suggestion (plain factual accuracy: the capability cost).
Decoding is greedy, so a cell's seed changes nothing and one seed is run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from alignlab.core.errors import ConfigError
from alignlab.core.experiment import TECHNIQUE_KEY, Experiment, ExperimentConfig
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.registry import register
from alignlab.core.section import Figure, Table
from alignlab.experiments.steering_report import curves_figure, findings, sweep_table

MEASURES = ("agree_wrong", "accuracy_none", "accuracy_wrong", "ab_p_syc", "ab_syc_rate")


@dataclasses.dataclass(frozen=True)
class SteeringExperimentConfig(ExperimentConfig):
    layers: tuple[int, ...] = (6, 8, 10, 12, 14)
    """Layers the vector is added at (resid_post, 0-based; SmolLM2-135M has 30)."""
    multipliers: tuple[float, ...] = (-512.0, -256.0, -128.0, -64.0, 128.0, 256.0)
    """Multipliers swept at each layer (negative: away from sycophancy); 0 is the unsteered cell, always run. The
    letter-balanced vector is small against the residual stream (both norms are stored with each cell), so effects
    start near |multiplier| 128."""
    random_control: bool = True
    """Also run a random vector of the same norm at every layer and multiplier."""
    items: int = 0
    """Held-out items per cell (0: every held-out factual item)."""
    max_new_tokens: int = 32
    """Tokens generated per reply in the generated-answer measure."""
    dtype: Literal["auto", "float32", "bfloat16"] = "float32"
    """Weights dtype (auto: bfloat16 where native). float32 by default: the vector is computed and added in it."""
    techniques: tuple[str, ...] = ("system-prompt",)

    @classmethod
    def quick(cls) -> "SteeringExperimentConfig":
        return cls(layers=(10,), multipliers=(-256.0,), items=40, max_new_tokens=24, dtype="auto")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.layers or min(self.layers) < 0:
            raise ConfigError(f"steering: layers must be non-empty and >= 0 (got {self.layers})")
        if not self.multipliers or any(m == 0 for m in self.multipliers):
            raise ConfigError(f"steering: multipliers must be non-empty and non-zero (0 is the unsteered cell, "
                              f"always run); got {self.multipliers}")
        if self.items < 0 or self.max_new_tokens < 1:
            raise ConfigError("steering: items must be >= 0 (0 = all held-out items) and max_new_tokens >= 1")


def measure(model: Any, items: list[Any], max_new_tokens: int, seed: int = 0) -> dict[str, Any]:
    """The held-out measures of one chat model: per item A/B scores and the sycophancy-answer eval's records
    (arms none and wrong), and their means with bootstrap intervals (`NAME`, `NAME_lo`, `NAME_hi`)."""
    from alignlab.evals.stats import bootstrap_mean
    from alignlab.evals.sycophancy_answer import AnswerConfig, SycophancyAnswer
    from alignlab.interp.caa import ab_scores

    ab = ab_scores(model, items)
    ev = SycophancyAnswer(AnswerConfig(arms=("none", "wrong"), max_new_tokens=max_new_tokens))
    records = ev.evaluate(model, items, seed)
    columns = {"agree_wrong": [r["names_suggested_wrong"] for r in records],
               "accuracy_none": [r["correct_none"] for r in records],
               "accuracy_wrong": [r["correct_wrong"] for r in records],
               "ab_p_syc": [a["p_sycophantic"] for a in ab], "ab_syc_rate": [a["chooses_sycophantic"] for a in ab]}
    metrics: dict[str, float] = {}
    for name, values in columns.items():
        est = bootstrap_mean(values, seed, name)
        metrics.update({name: est.value, f"{name}_lo": est.lo, f"{name}_hi": est.hi})
    metrics["n_items"] = float(len(items))
    examples = [{"id": r["id"], "wrong": r["transcript"]["wrong"][-1]["content"],
                 "none": r["transcript"]["none"][-1]["content"]} for r in records[:4]]
    return {"metrics": metrics, "items": {k: [float(x) for x in v] for k, v in columns.items()},
            "ids": [r["id"] for r in records], "examples": examples}


@register("experiment", "steering-v0")
class SteeringExperiment(Experiment):
    title = "Steering against sycophancy (contrastive activation addition)"
    summary = ("A steering vector from the training half of the factual items (sycophantic minus honest A/B answers, "
               "where the user suggests a wrong answer) is added to the embedded model's residual stream at one layer "
               "with a multiplier, swept over layers and multipliers, beside a random vector of equal norm and the "
               "anti-sycophancy system prompt. Measured on the held-out half: the A/B probability of the sycophantic "
               "letter, the share of generated replies naming the user's wrong suggestion, and plain factual accuracy "
               "(the alignment tax).")
    source = ("Rimsky et al. 2023, \"Steering Llama 2 via Contrastive Activation Addition\", arXiv:2312.06681; "
              "Turner et al. 2023, arXiv:2308.10248; Sharma et al. 2023, arXiv:2310.13548")
    specified_label = "the reply names the wrong answer the user suggested (agreement with the user)"
    intended_label = "the reply names the correct answer despite the suggestion"
    slots = ("chat-model",)
    failure_mode = "sycophancy"
    benefit_label = "accuracy when the user suggests a wrong answer (held-out items)"
    capability_label = "plain factual accuracy, no suggestion (held-out items)"
    reads_technique_cells = True  # the prompting baseline is drawn beside the steering curves
    Config = SteeringExperimentConfig
    default_seeds = 1
    quick_seeds = 1

    @classmethod
    def smoke_config(cls) -> SteeringExperimentConfig:
        return cls.Config(layers=(10,), multipliers=(-4.0,), random_control=False, items=4, max_new_tokens=8)

    def cells(self) -> list[dict[str, Any]]:
        c = self.config
        base = {"items": c.items, "max_new_tokens": c.max_new_tokens, "dtype": c.dtype}
        out = [{**base, "vector": "none", "layer": None, "multiplier": 0.0}]
        for vector in ("caa", "random") if c.random_control else ("caa",):
            out += [{**base, "vector": vector, "layer": layer, "multiplier": float(m)}
                    for layer in c.layers for m in c.multipliers]
        return out

    def technique_supports(self, tech: Any, params: dict[str, Any]) -> str | None:
        if params["vector"] != "none":
            return "techniques are compared with the unsteered model only"
        return tech.supports(dict(params))

    def table_columns(self) -> list[str]:
        return ["vector", "layer", "multiplier"]

    def outcome(self, record: RunRecord) -> dict[str, float]:
        m = record.metrics
        return {"intended": m.get("accuracy_wrong", float("nan")), "capability": m.get("accuracy_none", float("nan"))}

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        from alignlab.core.registry import get
        from alignlab.evals.backends import make_model
        from alignlab.interp.caa import factual_split

        model = make_model("embedded", dtype=params["dtype"])
        info: dict[str, Any] = {}
        if params["vector"] != "none":
            steer = get("technique", "steering")  # by a literal name, so the cell's code version counts it
            tech = steer(steer.Config(layer=params["layer"], multiplier=params["multiplier"], vector=params["vector"]))
            model = tech.apply(model)
            info = dict(model.steering)
        tech = self.technique(params, "chat-model")
        if tech is not None:
            model = tech.apply(model)
            info = dict(getattr(model, "steering", None) or {})  # a steering technique says what it added
        items = factual_split("test")
        if params["items"]:
            from alignlab.evals.core import sample

            items = sample(items, params["items"], 0)  # the same items in every cell (stratified by category)
        out = measure(model, items, params["max_new_tokens"], seed)
        m = out["metrics"]
        m.update(specified=m["agree_wrong"], intended=m["accuracy_wrong"],
                 gap=m["agree_wrong"] - m["accuracy_wrong"])
        if info:
            named = {"vector_norm": "norm", "resid_norm": "resid_norm", "train_pairs": "pairs", "feature": "feature",
                     "feature_correlation": "correlation"}
            m.update({k: float(info[v]) for k, v in named.items() if isinstance(info.get(v), (int, float))})
        return CellResult(metrics=m, data={"items": out["items"], "ids": out["ids"], "examples": out["examples"]})

    # -- report ----------------------------------------------------------------------------

    def headline(self, records: list[RunRecord]) -> tuple[str, Any] | None:
        base = [r for r in records if r.config.get("vector") == "none" and not r.config.get(TECHNIQUE_KEY)]
        if not base:
            return None
        return "held-out sycophancy rate of the unsteered model (replies naming the user's wrong answer)", \
            self.share(base, "agree_wrong")

    def tables(self, records: list[RunRecord]) -> list[Table]:
        return [sweep_table(self.analysed(records))]

    def figures(self, records: list[RunRecord]) -> list[Figure]:
        fig = curves_figure(self.analysed(records))
        return [fig] if fig is not None else []

    def findings(self, records: list[RunRecord]) -> list[str]:
        return findings(self.analysed(records))
