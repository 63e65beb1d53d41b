"""Continuous batching in `alignlab serve`'s engine, over the tiny random Llama: requests that arrive while a batch
decodes join it between steps, each is answered when its own rows end, and greedy results equal those of the same
requests decoded one at a time."""

from __future__ import annotations

import asyncio
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from alignlab.evals.serve import decoding  # noqa: E402
from alignlab.evals.serve.decoding import Row, ServedLM, Seq, SlotBatch, decode_rows  # noqa: E402
from alignlab.evals.serve.engine import Engine, Job  # noqa: E402

QUESTIONS = [f"Question {i}: what is {'very ' * i}far away?" for i in range(6)]


@pytest.fixture(scope="module")
def lm() -> ServedLM:
    from alignlab.lm.chat import LocalChatModel
    from alignlab.lm.testing import cached_tiny_llama

    torch.set_num_threads(1)
    return ServedLM(LocalChatModel.load(str(cached_tiny_llama())))


def seq(lm: ServedLM, i: int, max_tokens: int, **kw) -> Seq:
    return Seq(lm.chat_ids([{"role": "user", "content": QUESTIONS[i]}]), max_tokens, **{"temperature": 0.0, **kw})


def alone(lm: ServedLM, s: Seq) -> tuple[str, list[int]]:
    row = Row(lm, s)
    decode_rows(lm, [row], lambda r: True)
    return row.text, row.tokens


async def serve(engine: Engine, lm: ServedLM, groups: list[list[Seq]], gap_steps: int = 0) -> list[Job]:
    """Submit one job per group; after the first, each waits until the engine has run `gap_steps` more steps."""
    jobs = []
    for group in groups:
        if jobs and gap_steps:
            target = engine.steps + gap_steps
            until = time.monotonic() + 20
            while engine.steps < target and time.monotonic() < until:
                await asyncio.sleep(0.001)
        job = Job(lm, group, timeout=60)
        engine.submit(job)
        jobs.append(job)
    await asyncio.gather(*(job.future for job in jobs))
    return jobs


@pytest.fixture
def slow_steps(monkeypatch):
    """Decoding steps of at least 3 ms, so a request submitted a few steps in finds the batch still running."""
    step = SlotBatch.step

    def slow(self, alive):
        time.sleep(0.003)
        return step(self, alive)

    monkeypatch.setattr(decoding.SlotBatch, "step", slow)


def test_the_tiny_llama_gets_continuous_batching(lm):
    assert SlotBatch.supported(lm)


def test_requests_arriving_mid_batch_join_it_and_match_sequential_greedy(lm, slow_steps):
    groups = [[seq(lm, 0, 40)], [seq(lm, 1, 6)], [seq(lm, 2, 9), seq(lm, 3, 3)], [seq(lm, 4, 12)]]
    engine = Engine(lm, max_batch=8, max_queue=8, wait_s=0.0)
    try:
        jobs = asyncio.run(serve(engine, lm, groups, gap_steps=2))
    finally:
        engine.stop()
    assert engine.joined >= 2 and engine.most_jobs_in_step >= 3  # later requests decoded with the first one
    assert engine.batches < len(groups)
    for job, group in zip(jobs, groups):
        assert [(r.text, r.tokens) for r in job.rows] == [alone(lm, s) for s in group]
        assert all(r.finish_reason == "length" and r.generated == s.max_tokens for r, s in zip(job.rows, group))


def test_a_short_request_is_answered_before_the_long_one_it_joined(lm, slow_steps):
    engine = Engine(lm, max_batch=4, max_queue=8, wait_s=0.0)
    finished: dict[str, float] = {}

    async def run() -> None:
        long_job = Job(lm, [seq(lm, 0, 60)], timeout=60)
        engine.submit(long_job)
        while engine.steps < 2:
            await asyncio.sleep(0.001)
        short_job = Job(lm, [seq(lm, 1, 3)], timeout=60)
        engine.submit(short_job)
        for name, job in (("short", short_job), ("long", long_job)):
            job.future.add_done_callback(lambda _, n=name: finished.setdefault(n, time.monotonic()))
        await asyncio.gather(long_job.future, short_job.future)

    try:
        asyncio.run(run())
    finally:
        engine.stop()
    assert engine.joined == 1 and finished["short"] < finished["long"]


def test_more_rows_than_slots_wait_for_free_slots_and_sampled_rows_keep_their_seed(lm):
    groups = [[seq(lm, i % len(QUESTIONS), 5 + i, temperature=0.8, top_p=0.9, seed=i)] for i in range(7)]
    engine = Engine(lm, max_batch=3, max_queue=16, wait_s=0.05)
    try:
        jobs = asyncio.run(serve(engine, lm, groups))
    finally:
        engine.stop()
    assert engine.most_jobs_in_step == 3  # never more rows than slots
    assert [job.rows[0].tokens for job in jobs] == [alone(lm, g[0])[1] for g in groups]


def test_a_cancelled_request_leaves_the_batch_and_the_others_finish(lm, slow_steps):
    engine = Engine(lm, max_batch=4, max_queue=8, wait_s=0.0)

    async def run() -> tuple[Job, Job]:
        doomed, kept = Job(lm, [seq(lm, 0, 500)], timeout=60), Job(lm, [seq(lm, 1, 20)], timeout=60)
        engine.submit(doomed)
        engine.submit(kept)
        while engine.steps < 3:
            await asyncio.sleep(0.001)
        doomed.cancel()
        await kept.future
        return doomed, kept

    try:
        doomed, kept = asyncio.run(run())
    finally:
        engine.stop()
    assert kept.rows[0].generated == 20 and kept.rows[0].tokens == alone(lm, seq(lm, 1, 20))[1]
    assert doomed.rows[0].finish_reason is None and doomed.rows[0].generated < 500
