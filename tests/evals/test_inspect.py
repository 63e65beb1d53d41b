"""The Inspect AI adapter, offline: alignlab/<eval> tasks through Inspect's entry point, the
`alignlab` model provider on the tiny random Llama, the are-you-sure solver's turns, and
scores equal to alignlab's own scoring of the same transcripts."""

from __future__ import annotations

import importlib.metadata
import math
import os
import pkgutil

import pytest

pytest.importorskip("inspect_ai")  # the optional `inspect` extra

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402
from inspect_ai.model import ModelOutput, ModelUsage, get_model  # noqa: E402

import alignlab.evals  # noqa: E402
from alignlab.core import registry  # noqa: E402
from alignlab.evals import factual as F  # noqa: E402
from alignlab.evals.protocols import CHALLENGE, FINAL, NEUTRAL, ask  # noqa: E402
from alignlab.evals.scorers import apologizes, restated_or_abandoned  # noqa: E402

BY_QUESTION = {s.question: s for s in F.factual()}


@pytest.fixture(scope="module")
def tiny():
    from alignlab.lm.testing import cached_tiny_llama

    return str(cached_tiny_llama())


def records(log) -> dict[str, dict]:
    return {s.id: s.scores["alignlab_score"].metadata["record"] for s in log.samples}


def run(tasks, model, tmp_path, **kw):
    logs = inspect_eval(tasks, model=model, log_dir=str(tmp_path), display="none", **kw)
    for log in logs:
        assert log.status == "success", log.error
    return logs


def test_tasks_resolve_through_the_entry_point():
    from inspect_ai._util.registry import registry_find, registry_info, registry_lookup

    [ep] = [ep for ep in importlib.metadata.entry_points(group="inspect_ai") if ep.name == "alignlab"]
    assert ep.value == "alignlab.evals.inspect.tasks"
    for full in registry.names("eval"):
        for name in (full, full.rsplit("-v", 1)[0]):
            task_fn = registry_lookup("task", f"alignlab/{name}")
            assert task_fn is not None, name
            assert registry_info(task_fn).name == f"alignlab/{name}"
    ours = registry_find(lambda i: i.type == "task" and i.name.startswith("alignlab/"))
    listed = {registry_info(t).name for t in ours}
    assert listed == {f"alignlab/{n}" for full in registry.names("eval") for n in (full, full.rsplit("-v", 1)[0])}
    assert registry_lookup("modelapi", "alignlab/alignlab") is not None
    # alignlab's registry imports every module under alignlab.evals: the adapter must not be one
    walked = [i.name for i in pkgutil.walk_packages(alignlab.evals.__path__, "alignlab.evals.")]
    assert not [n for n in walked if n.startswith("alignlab.evals.inspect")]


def test_every_eval_runs_in_inspect_and_matches_alignlab(tiny, tmp_path):
    """Per-item records and metrics through Inspect equal `Eval.run` on the same model."""
    from alignlab.evals.backends import make_model

    model = get_model(f"alignlab/{tiny}")
    names = registry.names("eval")
    logs = run([f"alignlab/{n}" for n in names], model, tmp_path, task_args={"limit": 2}, max_tasks=len(names))
    assert model.api.batcher.calls > 0
    local = make_model(tiny)
    for name, log in zip(names, logs):
        assert log.eval.task == f"alignlab/{name}" and os.path.exists(log.location)
        ours = registry.get("eval", name)().run(local, limit=2, seed=0)
        assert records(log) == {r["id"]: r for r in ours.items}, name
        metrics = log.results.scores[0].metrics
        for key, est in ours.metrics.items():
            if est.n and math.isfinite(est.value):
                assert metrics[key].value == pytest.approx(est.value, abs=1e-12), (name, key)
    uses = {n: log.samples[0].store["alignlab_uses_logprobs"] for n, log in zip(names, logs)}
    assert uses["calibration-v0"] and logs[names.index("calibration-v0")].samples[0].store["alignlab_logprobs"]


def scripted_reply(messages: list[dict[str, str]]) -> str:
    """Answers correctly; after a challenge, abandons the answer for the distractor on questions
    of even length and restates it otherwise (a known mix of outcomes)."""
    item = BY_QUESTION[messages[0]["content"].removesuffix(" Answer as concisely as possible.")]
    users = [m["content"] for m in messages if m["role"] == "user"]
    if len(users) == 1:
        return f"The answer is {item.gold}."
    if len(users) == 2:
        return "I apologize, I was wrong." if users[1] == CHALLENGE else "You're welcome."
    abandon = users[1] == CHALLENGE and len(item.question) % 2 == 0
    return f"It is {item.distractors[0]}." if abandon else f"It is {item.gold}."


def mock(input, tools, tool_choice, config) -> ModelOutput:
    """scripted_reply as an Inspect mockllm output (with usage: mockllm would otherwise count
    tokens with tiktoken, which downloads its encoding)."""
    out = ModelOutput.from_content("mockllm", scripted_reply([{"role": m.role, "content": m.text} for m in input]))
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return out


def test_are_you_sure_solver_turns_and_scores(tmp_path):
    """Three user turns per arm, the first shared by both arms; the score is alignlab's scorer
    applied to the logged replies; metrics equal alignlab's run with the same scripted model."""

    model = get_model("mockllm/model", custom_outputs=mock)
    [log] = run("alignlab/sycophancy-are-you-sure", model, tmp_path, task_args={"limit": 8, "seed": 3})
    log = read_eval_log(log.location)  # what the log file on disk holds
    assert len(log.samples) == 8
    outcomes = set()
    for sample in log.samples:
        item = BY_QUESTION[sample.input]
        challenge, control = sample.store["alignlab_dialogues"]
        users = [[m["content"] for m in d if m["role"] == "user"] for d in (challenge, control)]
        assert users == [[ask(item.question), CHALLENGE, FINAL], [ask(item.question), NEUTRAL, FINAL]]
        assert [m.text for m in sample.messages] == [m["content"] for m in challenge]
        assert sum(e.event == "model" for e in sample.events) == 5  # the shared first turn is asked once
        first, second, final = (m["content"] for m in challenge if m["role"] == "assistant")
        rec = sample.scores["alignlab_score"].metadata["record"]
        assert rec["first_status"] == F.status(first, item)[0] == "correct"
        assert rec["outcome_challenge"] == restated_or_abandoned("correct", F.status(final, item)[0])
        assert rec["apology_challenge"] == float(apologizes(second)) == 1.0
        assert sample.scores["alignlab_score"].value["apology_challenge"] == 1.0
        outcomes.add(rec["outcome_challenge"])
    assert outcomes == {"restated", "abandoned"}

    from tests.evals.test_evals_logic import Scripted

    ours = registry.get("eval", "sycophancy-are-you-sure-v0")().run(Scripted(scripted_reply), limit=8, seed=3)
    assert records(log) == {r["id"]: r for r in ours.items}
    metrics = log.results.scores[0].metrics
    for key in ("abandoned_challenge", "abandoned_control", "abandon_effect", "specified", "intended", "gap"):
        assert metrics[key].value == pytest.approx(ours.metrics[key].value, abs=1e-12)
        assert metrics[f"{key}_lo"].value == pytest.approx(ours.metrics[key].lo, abs=1e-12)
    assert metrics["abandoned_control"].value == 0.0 < metrics["abandoned_challenge"].value


def test_overrides_task_parameter(tmp_path):

    [log] = run("alignlab/sycophancy-are-you-sure-v0", get_model("mockllm/model", custom_outputs=mock), tmp_path,
                task_args={"limit": 2, "overrides": ["control=false"]})
    assert all(len(s.store["alignlab_dialogues"]) == 1 for s in log.samples)
    assert "abandoned_control" not in log.results.scores[0].metrics


class Echo:
    """A chat model that upper-cases the last message, slowly, and records its batch sizes."""

    def __init__(self):
        self.batches: list[int] = []

    def chat(self, convs, max_new_tokens=8, temperature=0.0, seed=0):
        import time

        self.batches.append(len(convs))
        time.sleep(0.2)
        return [c[-1]["content"].upper() for c in convs]


def test_provider_batcher_gathers_requests_and_survives_cancellation():
    import anyio

    from alignlab.evals.inspect.provider import _Batcher

    echo = Echo()
    batcher = _Batcher(echo, max_batch=8, linger=0.005, max_linger=0.02)
    got: dict[str, str] = {}

    async def ask_(text: str, delay: float = 0.0, cancel_after: float | None = None):
        await anyio.sleep(delay)
        with anyio.move_on_after(cancel_after if cancel_after is not None else 10):
            [(reply, *_)] = await batcher.submit(("chat", 8, 0.0, 0), [[{"role": "user", "content": text}]])
            got[text] = reply

    async def main():
        with anyio.fail_after(5):  # a lost leader would hang here
            async with anyio.create_task_group() as tg:
                for i in range(6):
                    tg.start_soon(ask_, f"q{i}")
            assert echo.batches == [6]  # concurrent requests share one call
            async with anyio.create_task_group() as tg:
                tg.start_soon(ask_, "first")
                tg.start_soon(ask_, "cancelled", 0.06, 0.06)  # gives up while the first batch runs
                tg.start_soon(ask_, "waiting", 0.06)

    anyio.run(main)
    assert got == {**{f"q{i}": f"Q{i}" for i in range(6)}, "first": "FIRST", "waiting": "WAITING"}
    assert echo.batches == [6, 1, 1] and batcher.pending == [] and not batcher.busy
