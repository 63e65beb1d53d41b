"""Behavioural evaluations of language models: sycophancy, framing, calibration (grid: eval x model x seed).

Runs the registered evals (alignlab.evals; all of them by default, so an eval joins by
registering) on each model spec through the lab's runner, so the numbers land in the results
store and the HTML report beside every other experiment. The seed picks the item sample
(stratified by category) and seeds any sampling. Every metric is stored with its 95%
bootstrap interval over items and its number of items; transcripts of a sample of items are
written as artifacts. Sources: Sharma et al. 2023 (arXiv:2310.13548), Wei et al. 2023
(arXiv:2307.02483), Röttger et al. 2023 (arXiv:2308.01263), Kadavath et al. 2022
(arXiv:2207.05221).

`data` points evals at a user's own item files (evals/datasets.py; `sycophancy-answer=my.jsonl`, or
one file when `evals` names one eval): those cells carry the file's name and sha256 in their parameters
(`data`), their stored data (`dataset`) and every report table, never the shipped set's name.

The experiment exposes the `chat-model` slot: `--set techniques=system-prompt` runs every cell again
with the model wrapped by the technique (paired on seed), e.g. the system-prompt baseline of Sharma
et al. 2023 and Wei et al. 2023 (arXiv:2308.03958). A model spec in `models` may carry techniques
itself (`embedded#system=anti-sycophancy`), for side-by-side columns in the comparison table.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from alignlab.core import registry
from alignlab.core.errors import ConfigError, UserError
from alignlab.core.experiment import Experiment, ExperimentConfig
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.registry import register
from alignlab.core.section import Table
from alignlab.evals.protocols import ANSWER_SUFFIX, TEMPLATES
from alignlab.evals.stats import Estimate
from alignlab.experiments.behavioural_evals_report import (PROTOCOL_SETTINGS, eval_label, eval_of, protocol_table,
                                                          transcripts_html)


def registered_evals() -> tuple[str, ...]:
    """Every registered eval, in name order (`alignlab list eval`): the valid values of `evals`
    and its default, so an eval joins the experiment by registering alone."""
    return tuple(registry.names("eval"))


@dataclasses.dataclass(frozen=True)
class BehaviouralEvalsConfig(ExperimentConfig):
    evals: tuple[str, ...] = dataclasses.field(default_factory=registered_evals)
    """Registered eval names (alignlab list eval); default: all of them."""
    models: tuple[str, ...] = ("embedded",)
    """Model specs: embedded, a local folder or cached id, or openai:<base_url>/<model>; then any chat-model
    techniques (BASE#system=anti-sycophancy)."""
    limit: int = 120
    """Items per eval and seed (stratified by category; an eval with fewer items uses them all)."""
    eval_preset: Literal["default", "quick"] = "default"
    """Each eval's own config preset (quick runs fewer arms)."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Weights dtype of local models: auto = bfloat16 where the CPU (or GPU) runs it natively, else float32
    (lm/models.py `resolve_dtype`); cells carry the dtype it resolved to, and the report shows it."""
    answer_suffix: str = ANSWER_SUFFIX
    """The first user turn's suffix in every eval with an `answer_suffix` setting (sycophancy-answer, are-you-sure,
    calibration); '' sends the question alone, as Sharma et al. do (default: alignlab's v0 protocol)."""
    wording: Literal["alignlab", "sharma"] = "alignlab"
    """The suggestion templates of every eval with a `wording` setting (sycophancy-answer): 'sharma' = Sharma et
    al.'s released templates verbatim, 'alignlab' = v0's (a comma before 'but')."""
    judge: str = ""
    """A model spec that decides instead of the rules in every eval with a `judge` setting: refusals in framing, the
    answer a reply gives in sycophancy-answer and are-you-sure ('' = the rules); its agreement with the hand labels
    is reported."""
    data: tuple[str, ...] = ()
    """Your own items instead of the shipped ones: EVAL=FILE per eval (EVAL with or without -vN; it must be in
    `evals`), or one FILE when `evals` names one eval (as alignlab eval --data; docs/evals.md, 'Bring your own
    data'). Evals without a file use the shipped items; cells are labelled with the file's name and sha256."""
    data_format: Literal["auto", "jsonl", "csv", "sycophancy-eval", "scenario"] = "auto"
    """Format of the `data` files (auto: detected from each file's extension and first line)."""

    @classmethod
    def quick(cls) -> "BehaviouralEvalsConfig":
        """The tour's preset: 100 items per eval (framing and feedback have fewer: all of them), so the headline
        metrics' 95% bootstrap intervals over items come out near or under +-0.15 on the embedded model; 8 items gave
        +-0.3 to +-0.4 (docs/evals.md, 'How many items')."""
        return cls(limit=100, eval_preset="quick")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.evals or not self.models:
            raise ConfigError("behavioural-evals: evals and models must be non-empty")
        if self.limit < 1:
            raise ConfigError(f"behavioural-evals: limit must be >= 1 (got {self.limit})")
        known = registered_evals()
        for name in self.evals:
            if name not in known:
                raise ConfigError(f"behavioural-evals: unknown eval {name!r}; valid: {', '.join(known)}")
        if self.wording not in TEMPLATES:
            raise ConfigError(f"behavioural-evals: wording must be one of {', '.join(TEMPLATES)} "
                              f"(got {self.wording!r})")
        if "\n" in self.answer_suffix or self.answer_suffix != self.answer_suffix.strip():
            raise ConfigError(f"behavioural-evals: answer_suffix must be one line without leading or trailing spaces "
                              f"(a space is put before it; '' sends the question alone), got {self.answer_suffix!r}")
        for key in PROTOCOL_SETTINGS:  # a changed setting must reach at least one eval
            if getattr(self, key) != _DEFAULTS[key] and not any(key in eval_settings(e) for e in self.evals):
                having = [e for e in known if key in eval_settings(e)]
                raise ConfigError(f"behavioural-evals: {key} applies to {', '.join(having) or 'no registered eval'}; "
                                  f"evals ({', '.join(self.evals)}) has none of them")
        from alignlab.evals.backends import model_spec_techniques, parse_spec

        for spec in self.models:  # a model spec's techniques are checked here, before anything runs
            model_spec_techniques(spec)
        if self.judge:
            try:
                parse_spec(model_spec_techniques(self.judge)[0])
            except UserError as exc:
                raise ConfigError(f"behavioural-evals: judge: {exc}") from None
        from alignlab.evals.datasets import load_for_eval

        for name, path in data_files(self).items():  # each file validated before anything runs
            load_for_eval(registry.get("eval", name), path, self.data_format)


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(BehaviouralEvalsConfig) if f.name in PROTOCOL_SETTINGS}


def eval_settings(eval_name: str) -> dict[str, Any]:
    """The protocol settings (PROTOCOL_SETTINGS) that the eval's config has, with the eval's defaults."""
    fields = {f.name: f.default for f in dataclasses.fields(registry.get("eval", eval_name).Config)}
    return {k: fields[k] for k in PROTOCOL_SETTINGS if k in fields}


def protocol_params(config: BehaviouralEvalsConfig, eval_name: str) -> dict[str, Any]:
    """The protocol settings `config` sets away from the eval's defaults, for the evals that have them: only these
    go into a cell's parameters, so a cell with the default protocol keeps its hash."""
    return {k: getattr(config, k) for k, default in eval_settings(eval_name).items() if getattr(config, k) != default}


def data_files(config: BehaviouralEvalsConfig) -> dict[str, str]:
    """Registered eval name -> the data file `config.data` gives it."""
    out: dict[str, str] = {}
    for entry in config.data:
        head, sep, tail = entry.partition("=")
        name = registry.resolve_or_none("eval", head.strip()) if sep else None
        if name is None:
            if len(config.evals) != 1:
                raise ConfigError(f"behavioural-evals: data {entry!r}: write EVAL=FILE when evals names more than "
                                  f"one eval ({', '.join(config.evals)})")
            name, path = config.evals[0], entry
        else:
            path = tail
        if name not in config.evals:
            raise ConfigError(f"behavioural-evals: data {entry!r} is for {name}, which evals does not include")
        if name in out:
            raise ConfigError(f"behavioural-evals: data gives {name} two files")
        if not path.strip():
            raise ConfigError(f"behavioural-evals: data {entry!r} names no file")
        out[name] = path.strip()
    return out


CAPABILITY: dict[str, tuple[str, bool, str]] = {
    "sycophancy-answer": ("accuracy_none", False, "accuracy with no suggestion"),
    "sycophancy-are-you-sure": ("first_accuracy", False, "first-answer accuracy"),
    "sycophancy-feedback": ("rated_share", False, "share of neutral prompts rated"),
    "framing": ("over_refusal", True, "harmless requests answered"),
    "calibration": ("accuracy_generated", False, "accuracy on real questions"),
}
"""Per eval (name without its version): (metric, use 1 - metric, label) of the task skill whose loss is
the alignment tax. An eval registered later may name its metric in a `capability_metric` class
attribute; otherwise its tax is n/a."""


def capability(eval_name: str, metrics: dict[str, float]) -> float:
    """The capability measure of one cell of `eval_name` from its metrics (a fraction; NaN if unknown)."""
    key, flip, _ = CAPABILITY.get(eval_name.rsplit("-v", 1)[0], (None, False, ""))
    if key is None:
        try:
            key = getattr(registry.get("eval", eval_name), "capability_metric", None)
        except Exception:  # noqa: BLE001 - records of an eval no longer registered
            key = None
    value = float(metrics.get(key, float("nan"))) if key else float("nan")
    return 1.0 - value if flip else value


def weights_dtype(model_spec: str, dtype: str) -> str:
    """The weights dtype a cell's model ran with: `dtype` (resolved) for a local model; an endpoint's is unknown."""
    from alignlab.evals.backends import model_spec_techniques, parse_spec
    from alignlab.lm.models import resolve_dtype

    return resolve_dtype(dtype) if parse_spec(model_spec_techniques(model_spec)[0])[0] == "local" else "endpoint"


def _pooled(records: list[RunRecord]) -> dict[tuple[str, str], dict[str, Estimate]]:
    """(eval, model) -> metrics recomputed on the items of every seed (an item counted once)."""
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    presets: dict[tuple[str, str], str] = {}
    for r in records:
        key = (eval_label(r.config), r.config["model"])  # a user's data set is never pooled with the shipped items
        presets[key] = r.config.get("eval_preset", "default")
        for item in r.data.get("items", []):
            groups[key].setdefault(item["id"], item)
    out = {}
    for (name, model), items in groups.items():
        cls = registry.get("eval", eval_of(name))
        ev = cls(cls.Config.quick() if presets[(name, model)] == "quick" else cls.Config())
        out[(name, model)] = ev.metrics(list(items.values()), seed=0)
    return out


@register("experiment", "behavioural-evals-v0")
class BehaviouralEvals(Experiment):
    title = "Behavioural evaluations: sycophancy, framing, calibration"
    summary = (
        "Sycophancy (the user suggests a wrong answer; 'Are you sure?' with a neutral control; feedback that "
        "follows the user's opinion), compliance under authority or safety-research framing and over-refusal, "
        "and calibration with confident answers about invented entities, on any model: the embedded SmolLM2, a "
        "local model, or an OpenAI-compatible endpoint. Every metric has a 95% bootstrap interval over items."
    )
    source = ("Sharma et al. 2023, arXiv:2310.13548; Wei, Haghtalab & Steinhardt 2023, arXiv:2307.02483; "
              "Röttger et al. 2023, arXiv:2308.01263; Kadavath et al. 2022, arXiv:2207.05221")
    specified_label = (
        "what an approval-seeking proxy rewards, per eval: sycophancy-answer = the reply names the user's wrong "
        "suggestion; are-you-sure = the model concedes to the challenge (apologizes, or does not restate its correct "
        "answer); feedback = the rating sides with the user's stated like/dislike; framing = the model complies; "
        "calibration = the model's confidence (answering at all, for invented entities); any other registered eval: "
        "see its card (alignlab describe NAME)")
    intended_label = (
        "what we want, per eval: sycophancy-answer = correct answer despite the suggestion; are-you-sure = the "
        "correct answer restated; feedback = the neutral rating ranks the sound work above its flawed twin; "
        "framing = refuses harmful requests in every framing and answers harmless ones; calibration = correct "
        "(abstains, for invented entities); any other registered eval: see its card. gap = specified - intended")
    tour = True
    slots = ("chat-model",)
    failure_mode = "sycophancy"
    benefit_label = "each eval's intended metric (see its card)"
    capability_label = ("each eval's task skill: " + "; ".join(f"{name} {label}" for name, (_, _, label) in
                                                               CAPABILITY.items()))
    Config = BehaviouralEvalsConfig
    default_seeds = 2
    quick_seeds = 1

    @classmethod
    def smoke_config(cls) -> BehaviouralEvalsConfig:
        """The contract test's one cell: answer sycophancy on 4 items of the embedded model (the
        cheapest of the evals: two short arms per item in its quick preset)."""
        return cls.Config(evals=("sycophancy-answer-v0",), limit=4, eval_preset="quick")

    def cells(self) -> list[dict[str, Any]]:
        from alignlab.evals.datasets import load_for_eval

        c = self.config
        data: dict[str, dict[str, str]] = {}
        for e, path in data_files(c).items():  # the label (name@sha256) is in the parameters: new data, new cells
            loaded = load_for_eval(registry.get("eval", e), path, c.data_format)
            data[e] = {"data": loaded.label, "data_file": path, "data_format": loaded.format}
        from alignlab.lm.models import resolve_dtype

        dtype = resolve_dtype(c.dtype)  # the dtype the cell runs with, so a cell's parameters say it
        return [{"eval": e, "model": m, "limit": c.limit, "eval_preset": c.eval_preset, "dtype": dtype,
                 **protocol_params(c, e), **data.get(e, {})}
                for e in c.evals for m in c.models]

    def table_columns(self) -> list[str]:
        return ["eval", "model", "data"]  # data: the user's data set (name@sha256) of a cell; none: shipped items

    def headline(self, records: list[RunRecord]) -> tuple[str, Any] | None:
        """Answer sycophancy's agreement with the user's wrong suggestion on the first model, items of every seed
        pooled. Its interval is the 95% bootstrap over items (the greedy replies are fixed for an item; the seed only
        picks the items), given as the larger side's half-width: not the report's usual Student-t over seeds."""
        answer = [r for r in records if r.config["eval"].startswith("sycophancy-answer") and not r.config.get("data")]
        if not answer:
            return None
        from alignlab.core.stats import MeanCI

        model = sorted({r.config["model"] for r in answer})[0]
        e = _pooled([r for r in answer if r.config["model"] == model])[(answer[0].config["eval"], model)].get(
            "agree_wrong")
        if e is None or e.n == 0:  # run without the wrong-suggestion arm
            return None
        return (f"share of replies giving the user's wrong suggestion (sycophancy-answer on {model}; ± 95% bootstrap "
                f"over {e.n} items)", MeanCI(e.value, max(e.value - e.lo, e.hi - e.value), e.n))

    def outcome(self, record: RunRecord) -> dict[str, float]:
        """Benefit: the eval's intended metric. Capability: the eval's task skill the technique could cost
        (CAPABILITY), not its specified metric, which here is the sycophantic proxy (lower is better)."""
        m = record.metrics
        return {"intended": m.get("intended", float("nan")), "capability": capability(record.config["eval"], m)}

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        from alignlab.evals.backends import make_model

        from alignlab.evals.datasets import load_for_eval

        cls = registry.get("eval", params["eval"])
        config = cls.Config.quick() if params["eval_preset"] == "quick" else cls.Config()
        config = dataclasses.replace(config, **{k: params[k] for k in PROTOCOL_SETTINGS if k in params})
        data = None
        if params.get("data_file"):
            data = load_for_eval(cls, params["data_file"], params.get("data_format", "auto"))
            if data.label != params["data"]:
                raise UserError(f"data file {params['data_file']} changed since the grid was made ({params['data']}, "
                                f"now {data.label}); run again")
        ev = cls(config, data=data)
        dtype = params.get("dtype", "float32")
        model = make_model(params["model"], dtype=dtype, cache=workdir.parent / "endpoint-cache.sqlite")
        tech = self.technique(params, "chat-model")
        if tech is not None:
            model = tech.apply(model)
        result = ev.run(model, limit=params["limit"], seed=seed)
        runs_dir = workdir.parents[2]
        (workdir / "result.json").write_text(json.dumps(result.to_dict(), indent=1, default=str), encoding="utf-8")
        with open(workdir / "transcripts.jsonl", "w", encoding="utf-8") as fh:
            for t in result.transcripts:
                fh.write(json.dumps(t, ensure_ascii=False) + "\n")
        (workdir / "transcripts.html").write_text(
            transcripts_html(f"{result.eval}{f' on data {data.label}' if data else ''} on {params['model']}"
                              f"{f' with {tech.spec}' if tech else ''} (seed {seed})", result.transcripts),
            encoding="utf-8")
        metrics = {k: v.value for k, v in result.metrics.items()}
        metrics["items"] = float(len(result.items))
        return CellResult(
            metrics=metrics,  # deterministic for a seed; the wall time goes to data
            data={"metrics": {k: v.to_dict() for k, v in result.metrics.items()}, "items": result.items,
                  "eval_config": result.config, "seconds": result.seconds, "dataset": result.data,
                  "dtype": weights_dtype(params["model"], dtype)},
            artifacts=[str((workdir / f).relative_to(runs_dir))
                       for f in ("transcripts.html", "transcripts.jsonl", "result.json")],
        )

    # -- report ----------------------------------------------------------------------------

    def tables(self, records: list[RunRecord]) -> list[Table]:
        pooled = _pooled(records)
        models = sorted({m for _, m in pooled})
        rows = []
        for name in sorted({e for e, _ in pooled}):
            cls = registry.get("eval", eval_of(name))
            for metric in ("specified", "intended", "gap") + tuple(cls.headline):
                rows.append([name, metric] + [pooled[(name, m)][metric].fmt() if (name, m) in pooled and
                                              metric in pooled[(name, m)] else "" for m in models])
        tables = [Table(
            "Comparison across models (items of all seeds pooled)", ["eval", "metric"] + models, rows,
            "value [95% bootstrap CI over items] (n = items). specified / intended per eval: see the card above. "
            "Compare a base model with its steered or fine-tuned versions by listing them all in `models`.")]
        tables.append(protocol_table(records))
        detail = []
        for r in sorted(records, key=lambda r: (eval_label(r.config), r.config["model"], r.seed)):
            for metric, d in r.data.get("metrics", {}).items():
                e = Estimate.from_dict(d)
                detail.append([eval_label(r.config), r.config["model"], r.seed, metric,
                               "n/a" if e.n == 0 else f"{e.value:.3f}",
                               "" if e.n == 0 else f"[{e.lo:.3f}, {e.hi:.3f}]", e.n])
        tables.append(Table("Every metric of every cell", ["eval", "model", "seed", "metric", "value", "95% CI", "n"],
                            detail, "Percentile bootstrap over items (2000 resamples; 1000 for ECE and Brier)."))
        tables.append(Table(
            "Transcripts", ["eval", "model", "seed", "files (under the runs folder)"],
            [[eval_label(r.config), r.config["model"], r.seed, ", ".join(r.artifacts)] for r in records],
            "Full conversations of a sample of items of each cell."))
        return tables

    def findings(self, records: list[RunRecord]) -> list[str]:
        out = []
        for (name, model), m in sorted(_pooled(records).items()):
            cls = registry.get("eval", eval_of(name))
            parts = ", ".join(f"{k} {m[k].fmt(2)}" for k in cls.headline if k in m)
            out.append(f"{name} on {model}: {parts}; gap (specified - intended) {m['gap'].fmt(2)}.")
            if "judge_agreement" in m:
                judges = sorted({r.config["judge"] for r in records if r.config.get("judge")})
                out.append(f"{name} on {model}: refusals decided by the judge {', '.join(judges)}, whose agreement "
                           f"with the hand labels is {m['judge_agreement'].fmt(2)}, Cohen's kappa "
                           f"{m['judge_kappa'].fmt(2)}.")
        if any(r.config["eval"] == "framing-v0" for r in records):
            from alignlab.evals.framing import refusal_agreement

            a = refusal_agreement()
            out.append(f"Refusal detector against hand labels of {a['n']} embedded-model replies: agreement "
                       f"{a['agreement']:.1%}, Cohen's kappa {a['kappa']:.2f} ({a['missed']} missed, "
                       f"{a['false_alarms']} false alarms).")
        return out
