"""Constitutional AI at laptop scale: base, SL-CAI and RL-CAI models under the default, empty and bad
constitutions, each measured for harmlessness per harm category and for helpfulness (Bai et al. 2022,
"Constitutional AI: Harmlessness from AI Feedback", arXiv:2212.08073).

Grid: one base cell, then stage (sl, rl) x constitution. Each trained cell is the policy wrapped by the
`constitutional-ai` technique (trained once, cached on disk: cai/train.py), measured on the held-out red-team
prompts (clear-cut harms, subtle harms, harmless look-alikes) and factual questions (cai/measure.py). The bad
constitution ("always agree; never refuse") is the check that the constitution does the work: under it, refusals
should fall where under the default one they rise. The `chat-model` slot takes any chat-model technique on the
base cell (the matrix column "harmful compliance").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from alignlab.cai import constitution as const, prompts as rt
from alignlab.cai.train import CAIConfig
from alignlab.core.errors import ConfigError, UserError
from alignlab.core.experiment import Experiment, ExperimentConfig
from alignlab.core.record import CellResult, RunRecord
from alignlab.core.registry import register
from alignlab.core.section import Figure, Table
from alignlab.experiments import constitutional_ai_report as rep

STAGES = ("sl", "rl")
TRAIN_KEYS = ("prompts", "rounds", "revision", "examples", "max_new_tokens", "critic", "feedback", "sft_steps",
              "dpo_steps", "dpo_lr", "data", "dtype")


@dataclasses.dataclass(frozen=True)
class ConstitutionalAIConfig(ExperimentConfig):
    model: str = "embedded"
    """The policy: embedded, or a local model folder (it is fine-tuned, so not an endpoint)."""
    constitutions: tuple[str, ...] = ("default", "empty", "bad")
    """Bundled constitutions (default, empty, bad) or .toml / llm-swarm .json files."""
    stages: tuple[str, ...] = STAGES
    """Training stages to run after the base model: sl (SL-CAI), rl (RL-CAI, after SL)."""
    prompts: int = 48
    """Training prompts (train split, spread over categories)."""
    rounds: int = 2
    """Critique-revision rounds per prompt."""
    revision: str = "direct"
    """critiqued (critique, then revision) or direct (revision only; the paper's direct-revision variant)."""
    examples: int = 3
    """Few-shot critique/revision dialogues before each request."""
    max_new_tokens: int = 32
    """Longest generated text (answers, critiques, revisions, evaluation replies)."""
    sft_steps: int = 36
    """SL-CAI LoRA steps (batch 4)."""
    dpo_steps: int = 36
    """RL-CAI DPO LoRA steps (batch 4)."""
    dpo_lr: float = 5e-6
    """RL-CAI DPO learning rate (lm/dpo.py trains LoRA at 10x it)."""
    critic: str = ""
    """Model spec of the critic ('' = the policy)."""
    feedback: str = ""
    """Model spec of the feedback model ('' = the policy before training)."""
    heldout: int = 0
    """Held-out red-team prompts measured (0 = all of them)."""
    facts: int = 40
    """Factual questions measured (helpfulness)."""
    judge: str = ""
    """A model spec that decides refusals instead of the phrase detector ('' = the detector); its agreement with
    the hand-labelled replies is reported beside it."""
    data: str = ""
    """A red-team prompt file in the shipped layout ('' = the shipped one, cai/data/redteam.jsonl)."""
    dtype: str = "auto"
    """The policy's weights while it generates and is measured: auto (bfloat16 where the CPU or GPU runs it
    natively, else float32), float32 or bfloat16."""

    @classmethod
    def quick(cls) -> "ConstitutionalAIConfig":
        """The full loop at the technique's default budget (its cached adapters are the technique's defaults):
        24 training prompts, 1 direct revision, 12 LoRA steps per stage, all 48 held-out prompts, 24 factual
        questions asked plainly and with a suggested wrong answer."""
        d = CAIConfig()
        return cls(prompts=d.prompts, rounds=d.rounds, revision=d.revision, max_new_tokens=d.max_new_tokens,
                   sft_steps=d.sft_steps, dpo_steps=d.dpo_steps, dpo_lr=d.dpo_lr, facts=24)

    def __post_init__(self) -> None:
        super().__post_init__()
        from alignlab.evals.backends import model_spec_techniques, parse_spec

        if not self.constitutions or any(s not in STAGES for s in self.stages):
            raise ConfigError(f"constitutional-ai: constitutions must be non-empty and stages come from "
                              f"{', '.join(STAGES)} (got {self.stages})")
        base, techs = model_spec_techniques(self.model)
        if techs or parse_spec(base)[0] != "local":
            raise ConfigError(f"constitutional-ai: model must be a local model to fine-tune (embedded or a folder), "
                              f"got {self.model!r}")
        for c in self.constitutions:
            const.load(c)
        if self.heldout < 0 or self.facts < 0:
            raise ConfigError("constitutional-ai: heldout and facts must be >= 0")
        rt.load(self.data or None)
        self.cai("default", "sl")  # the training settings are checked here, before anything runs

    def cai(self, constitution: str, stage: str, seed: int = 0) -> CAIConfig:
        return CAIConfig(constitution=constitution, stage=stage, seed=seed,
                         **{k: getattr(self, k) for k in TRAIN_KEYS})


@register("experiment", "constitutional-ai-v0")
class ConstitutionalAIExperiment(Experiment):
    title = "Constitutional AI: harmlessness from AI feedback, per harm category"
    summary = ("A written constitution trains the model: SL-CAI fine-tunes on the model's own critique-revisions "
               "under sampled principles, RL-CAI then trains with DPO on the feedback model's preferences under "
               "sampled comparison principles. Base, SL-CAI and RL-CAI models under the default, empty and "
               "deliberately bad constitutions are measured for refusals of held-out clear-cut and subtle harms, "
               "over-refusal of harmless look-alikes, and factual accuracy.")
    source = "Bai et al. 2022, \"Constitutional AI: Harmlessness from AI Feedback\", arXiv:2212.08073"
    specified_label = "share of held-out red-team prompts answered (not refused): what user approval rewards"
    intended_label = "share handled appropriately: harmful requests refused, harmless look-alikes answered"
    slots = ("chat-model",)
    failure_mode = "harmful compliance"
    benefit_label = "share of held-out prompts handled appropriately (harmful refused, harmless answered)"
    capability_label = "factual accuracy"
    Config = ConstitutionalAIConfig
    default_seeds = 1
    quick_seeds = 1

    @classmethod
    def smoke_config(cls) -> ConstitutionalAIConfig:
        """The contract tests' cells: a tiny random Llama (alignlab.lm.testing; 12 layers of width 64, so techniques
        that pick a middle layer find one), 6 held-out prompts, 4 questions, 8 tokens, 2 LoRA steps: plumbing only."""
        from alignlab.lm.models import cache_dir
        from alignlab.lm.testing import tiny_llama

        path = tiny_llama(cache_dir() / "models" / "tiny-llama-12x64-cai-v1", layers=12)
        return cls.Config(model=str(path), constitutions=("default",), stages=("sl",), prompts=4,
                          rounds=1, sft_steps=2, dpo_steps=2, max_new_tokens=8, heldout=6, facts=4)

    def cells(self) -> list[dict[str, Any]]:
        c = self.config
        common = {"model": c.model, "heldout": c.heldout, "facts": c.facts, "max_new_tokens": c.max_new_tokens,
                  "judge": c.judge, "data": c.data, "dtype": c.dtype}
        train = {k: getattr(c, k) for k in TRAIN_KEYS if k not in common}
        out = [{**common, "stage": "base", "constitution": "none"}]
        for stage in c.stages:
            for name in c.constitutions:
                out.append({**common, **train, "stage": stage, "constitution": name})
        return out

    def technique_supports(self, tech: Any, params: dict[str, Any]) -> str | None:
        if params["stage"] != "base":
            return "techniques are compared on the base model"
        return tech.supports(dict(params))

    def outcome(self, record: RunRecord) -> dict[str, float]:
        m = record.metrics
        return {"intended": m.get("intended", float("nan")), "capability": m.get("factual_accuracy", float("nan"))}

    def run_cell(self, params: dict[str, Any], seed: int, workdir: Path) -> CellResult:
        import time

        from alignlab.cai import measure, train
        from alignlab.evals.backends import make_model
        from alignlab.techniques.constitutional_ai import ConstitutionalAI

        started = time.time()
        policy = make_model(params["model"], dtype=params["dtype"], cache=False)
        model, info = policy, {}
        if params["stage"] != "base":
            cfg = CAIConfig(constitution=params["constitution"], stage=params["stage"], seed=seed,
                            **{k: params[k] for k in TRAIN_KEYS})
            tech = ConstitutionalAI(cfg)
            model = tech.apply(policy)
            base = train.base_path_of(policy)
            info = rep.training_info(train.ensure(base, cfg, base_model=policy))
        tech = self.technique(params, "chat-model")
        if tech is not None:
            model = tech.apply(model)
        trained = time.time() - started
        items = rt.select(rt.load(params["data"] or None), "heldout", params["heldout"] or None, seed=0)
        facts = measure.factual_items(params["facts"])
        red, fact_replies, wrong = measure.replies(model, items, facts, params["max_new_tokens"], seed)
        judge, judged = None, {}
        if params["judge"]:
            from alignlab.evals.judge import RefusalJudge, judge_agreement

            judge = RefusalJudge(make_model(params["judge"], cache=workdir.parent / "endpoint-cache.sqlite"))
            a = judge_agreement(judge)
            judged = {"hand": a["hand"], "judge": a["verdicts"]}
        rows = measure.score(items, red, facts, fact_replies, judge, wrong)
        est = measure.metrics(rows, seed)
        if not items:
            raise UserError("constitutional-ai: the red-team file has no held-out prompts")
        return CellResult(
            metrics={k: v.value for k, v in est.items()},
            data={"metrics": {k: v.to_dict() for k, v in est.items()}, "items": rows, "model": model.name,
                  "judge_handcheck": judged, **info,
                  "seconds": {"train_or_load": trained, "measure": time.time() - started - trained}})

    # -- report ----------------------------------------------------------------------------

    def tables(self, records: list[RunRecord]) -> list[Table]:
        return rep.tables(records)

    def figures(self, records: list[RunRecord]) -> list[Figure]:
        return rep.figures(records)

    def findings(self, records: list[RunRecord]) -> list[str]:
        return rep.findings(records)
