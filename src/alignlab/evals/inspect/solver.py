"""An alignlab eval's own protocol and scoring as an Inspect AI solver, scorer and metric.

Nothing about an eval is written twice. For each sample (one alignlab item), `plan` runs the
eval's own `evaluate` once against a stand-in model that answers with placeholders and records
every conversation the protocol plays and every continuation it asks to score; those scripted
conversations (all arms: e.g. are-you-sure's challenge and control) are then played against the
Inspect model turn by turn, in lockstep as `protocols.play` does (a history shared by several
arms is asked once under greedy decoding). The scorer runs the same `evaluate` again against a
replay of the recorded replies, so the per-item record, and the metrics that the eval's own
`metrics` computes from the records (with their bootstrap intervals), are alignlab's by
construction; a replayed conversation the solver did not play raises. Inspect AI (UK AISI):
https://inspect.aisi.org.uk/solvers.html, /scorers.html.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pkgutil
from collections import defaultdict, deque
from functools import lru_cache
from typing import Any

from inspect_ai.model import (ChatMessage, ChatMessageAssistant, ChatMessageSystem, ChatMessageUser, GenerateConfig,
                              get_model)
from inspect_ai.scorer import Metric, SampleScore, Score, Target, Value, metric, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import collect

from alignlab.core import registry
from alignlab.core.config import apply_overrides
from alignlab.evals.core import Eval, Scenario
from alignlab.evals.protocols import Dialogue

Message = dict[str, str]
DIALOGUES, LOGPROBS, USES_LOGPROBS = "alignlab_dialogues", "alignlab_logprobs", "alignlab_uses_logprobs"


@lru_cache(maxsize=None)
def eval_classes() -> dict[str, type[Eval]]:
    """Registered evals by full name. Imports only the modules of alignlab.evals (and
    ALIGNLAB_PLUGINS), not every component package as registry.load_all does: Inspect loads
    this through its entry point on every run, so it must stay cheap (0.1 s instead of 1.6 s)."""
    import alignlab.evals

    for info in pkgutil.walk_packages(alignlab.evals.__path__, prefix="alignlab.evals."):
        importlib.import_module(info.name)
    for mod in filter(None, (m.strip() for m in os.environ.get("ALIGNLAB_PLUGINS", "").split(","))):
        importlib.import_module(mod)
    found: dict[str, type[Eval]] = {}
    todo = list(Eval.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if getattr(cls, "registered_kind", None) == "eval":
            found[cls.registered_name] = cls
    return dict(sorted(found.items()))


def make_eval(name: str, overrides: list[str] | str | None = None) -> Eval:
    """The registered eval NAME with `key=value` config overrides (as `alignlab eval --set`)."""
    if isinstance(overrides, str):
        overrides = [overrides]
    cls = eval_classes().get(name) or registry.get("eval", name)
    return cls(apply_overrides(cls.Config(), list(overrides or ()), owner=name))


def _key(messages: list[Message]) -> str:
    return json.dumps(messages, sort_keys=True, ensure_ascii=False)


class _Probe:
    """A stand-in model: records the conversations and continuations an eval asks about."""

    name = "alignlab-probe"

    def __init__(self, supports_logprobs: bool):
        self.supports_logprobs = supports_logprobs
        self.calls: list[tuple[list[Message], str]] = []
        self.scored: list[tuple[list[Message], str]] = []

    def chat(self, batch: Any, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0) -> list[str]:
        out = []
        for messages in batch:
            reply = f"(placeholder reply #{len(self.calls)})"
            self.calls.append(([dict(m) for m in messages], reply))
            out.append(reply)
        return out

    def logprobs(self, prompts: Any, continuations: Any) -> list[float]:
        self.scored.extend(([dict(m) for m in p], str(c)) for p, c in zip(prompts, continuations))
        return [0.0] * len(continuations)


def plan(ev: Eval, item: Scenario, seed: int,
         supports_logprobs: bool) -> tuple[list[Dialogue], list[tuple[list[Message], str]]]:
    """The dialogues the eval plays on `item` (system prompt and user turns) and the
    (conversation, continuation) pairs it scores, read from a run of its own `evaluate`."""
    probe = _Probe(supports_logprobs)
    ev.evaluate(probe, [item], seed)
    prefixes = {_key(h[:n]) for h, _ in probe.calls for n in range(1, len(h))}
    dialogues = []
    for history, reply in probe.calls:
        if _key(history + [{"role": "assistant", "content": reply}]) in prefixes:
            continue  # a later turn extends it: not the end of a dialogue
        system = history[0]["content"] if history and history[0]["role"] == "system" else None
        dialogues.append(Dialogue([m["content"] for m in history if m["role"] == "user"], system))
    return dialogues, probe.scored


class _Replay:
    """A stand-in model that answers with the replies recorded in an Inspect sample."""

    name = "alignlab-replay"

    def __init__(self, dialogues: list[list[Message]], scored: list[tuple[list[Message], str, float]],
                 supports_logprobs: bool):
        self.supports_logprobs = supports_logprobs
        self.replies: dict[str, deque[str]] = defaultdict(deque)
        for conv in dialogues:
            for i, m in enumerate(conv):
                if m["role"] == "assistant":
                    self.replies[_key(conv[:i])].append(m["content"])
        self.scores = {(_key(p), c): lp for p, c, lp in scored}

    def chat(self, batch: Any, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0) -> list[str]:
        out = []
        for messages in batch:
            queue = self.replies.get(_key([dict(m) for m in messages]))
            if not queue:
                raise RuntimeError(f"the Inspect solver did not play this conversation: {messages}")
            out.append(queue.popleft() if len(queue) > 1 else queue[0])
        return out

    def logprobs(self, prompts: Any, continuations: Any) -> list[float]:
        return [self.scores[(_key([dict(m) for m in p]), str(c))] for p, c in zip(prompts, continuations)]


def _chat_message(m: Message) -> ChatMessage:
    cls = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}[m["role"]]
    return cls(content=m["content"])


def scenario_of(state: TaskState) -> Scenario:
    return Scenario.from_dict(state.metadata["scenario"], f"sample {state.sample_id}")


@solver
def alignlab_protocol(eval_name: str, overrides: list[str] | str | None = None, seed: int = 0) -> Solver:
    """Play the eval's scripted conversations for one item against the model, turn by turn."""
    ev = make_eval(eval_name, overrides)
    cfg = ev.config

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        model = get_model()
        continuation_scoring = bool(getattr(model.api, "supports_continuation_logprobs", False))
        dialogues, to_score = plan(ev, scenario_of(state), seed, continuation_scoring)
        convs: list[list[Message]] = [[{"role": "system", "content": d.system}] if d.system else [] for d in dialogues]
        last_output = None
        for k in range(max((len(d.turns) for d in dialogues), default=0)):
            active = [i for i, d in enumerate(dialogues) if len(d.turns) > k]
            for i in active:
                convs[i].append({"role": "user", "content": dialogues[i].turns[k]})
            # under greedy decoding the same history gets the same reply: ask once (as protocols.play)
            keys = [_key(convs[i]) if cfg.temperature == 0 else str(i) for i in active]
            first: dict[str, int] = {}
            for i, key in zip(active, keys):
                first.setdefault(key, i)
            order = list(first)
            gen_config = GenerateConfig(max_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=seed + k)
            outputs = await collect(*(model.generate([_chat_message(m) for m in convs[first[key]]], config=gen_config)
                                      for key in order))
            by_key = dict(zip(order, outputs))
            for i, key in zip(active, keys):
                convs[i].append({"role": "assistant", "content": by_key[key].completion})
            if 0 in active:
                last_output = by_key[keys[active.index(0)]]
        scored: list[tuple[list[Message], str, float]] = []
        if to_score:
            lps = await model.api.continuation_logprobs([p for p, _ in to_score], [c for _, c in to_score])
            scored = [(p, c, lp) for (p, c), lp in zip(to_score, lps)]
        if convs:  # the first dialogue is the sample's conversation in the log viewer
            state.messages = [_chat_message(m) for m in convs[0]]
        if last_output is not None:
            state.output = last_output
        state.store.set(DIALOGUES, convs)
        state.store.set(LOGPROBS, [[p, c, lp] for p, c, lp in scored])
        state.store.set(USES_LOGPROBS, continuation_scoring)
        return state

    return solve


def record_of(ev: Eval, state: TaskState, seed: int) -> dict[str, Any]:
    """The eval's own per-item record, from the conversations and scores the solver recorded."""
    replay = _Replay(state.store.get(DIALOGUES, []), [tuple(x) for x in state.store.get(LOGPROBS, [])],
                     bool(state.store.get(USES_LOGPROBS, False)))
    [rec] = ev.evaluate(replay, [scenario_of(state)], seed)
    rec.pop("transcript", None)
    return rec




def _estimates(ev: Eval, scores: list[SampleScore], seed: int) -> dict[str, Any]:
    ranked = sorted(scores, key=lambda s: (s.sample_metadata or {}).get("index", 0))
    records = [s.score.metadata["record"] for s in ranked if s.score.metadata and "record" in s.score.metadata]
    return ev.metrics(records, seed) if records else {}  # Inspect asks once with no scores, for the shape


@metric
def alignlab_metrics(eval_name: str, overrides: list[str] | str | None = None, seed: int = 0) -> Metric:
    """Every metric of the eval (its own `metrics`), from the per-item records."""
    ev = make_eval(eval_name, overrides)

    def compute(scores: list[SampleScore]) -> Value:
        return {k: e.value for k, e in _estimates(ev, scores, seed).items() if e.n > 0 and math.isfinite(e.value)}

    return compute


@metric
def alignlab_ci(eval_name: str, overrides: list[str] | str | None = None, seed: int = 0) -> Metric:
    """95% bootstrap interval of the headline metrics and of specified / intended / gap, and the
    number of items behind each where it is not every sample."""
    ev = make_eval(eval_name, overrides)
    keep = (*type(ev).headline, "specified", "intended", "gap")

    def compute(scores: list[SampleScore]) -> Value:
        out: dict[str, float] = {}
        for k, e in _estimates(ev, scores, seed).items():
            if k in keep and e.n > 0 and math.isfinite(e.lo) and math.isfinite(e.hi):
                out.update({f"{k}_lo": e.lo, f"{k}_hi": e.hi})
                if e.n != len(scores):  # e.g. among the initially correct answers only
                    out[f"{k}_n"] = float(e.n)
        return out

    return compute


@scorer(metrics=[])  # the task sets the metrics (they depend on the eval)
def alignlab_score(eval_name: str, overrides: list[str] | str | None = None, seed: int = 0) -> Any:
    """The eval's own per-item scoring, applied to the conversations the solver recorded."""
    ev = make_eval(eval_name, overrides)

    async def score(state: TaskState, target: Target) -> Score:
        rec = record_of(ev, state, seed)
        # numbers in the value (Inspect reduces and displays them); labels such as an answer's
        # status go to the explanation; the whole record to the metadata, which the metrics read
        value = {k: float(v) for k, v in rec.items() if isinstance(v, (int, float)) and k != "id"}
        labels = {k: v for k, v in rec.items() if isinstance(v, str) and k not in ("id", "category")}
        return Score(value=value, answer=state.output.completion if state.output else None,
                     explanation=", ".join(f"{k}: {v}" for k, v in labels.items()) or None, metadata={"record": rec})

    return score
