"""The generation engine of `alignlab serve`: one worker thread owns the model and answers queued jobs.

A job is one HTTP request: its rows (the n choices of each prompt) and the prompts it asks to score.
The queue of waiting jobs is bounded (a full queue is refused at once, so the server answers 429
rather than letting latency grow without limit). The worker takes the oldest job, waits a few
milliseconds for more, and decodes the rows of everything it took in one batch; while that batch runs,
requests that arrive are admitted into the slots that finished rows free, between decoding steps
(continuous batching, iteration-level scheduling as in Orca, Yu et al. 2022, OSDI), and each request is
answered as soon as its own rows end. Rows of different requests keep their own settings (decoding.py);
models without fast decoding steps are decoded a batch at a time. Each job has a deadline and can be
cancelled (client gone, time limit): its rows leave the batch at the next decoding step. Results and
streamed pieces go back to the event loop with `call_soon_threadsafe`, so the loop never waits on
the model.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from typing import Any, Callable, Sequence

from alignlab.evals.serve.decoding import Delta, Row, ServedLM, Seq, SlotBatch, decode_rows, score_prompt


class QueueFull(Exception):
    """The queue of waiting requests is full (HTTP 429)."""


class TimeLimit(Exception):
    """The request ran past its time limit (HTTP 504)."""


class ShuttingDown(Exception):
    """The server is stopping (HTTP 503)."""


_END = object()
log = logging.getLogger("alignlab.serve")


class Job:
    """One request's work. Create it on the event loop; the worker fills `rows` and `scores`."""

    def __init__(self, lm: ServedLM, seqs: Sequence[Seq], scores: Sequence[tuple[Sequence[int], int]] = (),
                 timeout: float = 600.0, stream: bool = False):
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[Job] = self.loop.create_future()
        self.events: asyncio.Queue[Any] | None = asyncio.Queue() if stream else None
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.cancelled = threading.Event()
        self.rows = [Row(lm, s, self._emitter(i) if stream else None) for i, s in enumerate(seqs)]
        self.score_requests = list(scores)
        self.scores: list[Any] = [None] * len(self.score_requests)
        self.resolved = False

    def _emitter(self, index: int) -> Callable[[Delta], None]:
        return lambda delta: self._call(self._put, (index, delta))

    def alive(self) -> bool:
        return not self.cancelled.is_set() and time.monotonic() < self.deadline

    def cancel(self) -> None:
        self.cancelled.set()

    # called in the worker thread
    def done(self) -> None:
        if self.cancelled.is_set() or self.resolved:
            return
        if any(not r.finished for r in self.rows) or any(s is None for s in self.scores):
            self.fail(TimeLimit(f"the request did not finish within the server's time limit of {self.timeout:g} s"))
            return
        self.resolved = True
        self._call(self._resolve, None)

    def fail(self, exc: BaseException) -> None:
        if not self.resolved:
            self.resolved = True
            self._call(self._resolve, exc)

    def _call(self, fn: Callable[..., None], arg: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, arg)
        except RuntimeError:  # the event loop is closed: nobody is waiting any more
            pass

    # called on the event loop
    def _put(self, item: Any) -> None:
        if self.events is not None:
            self.events.put_nowait(item)

    def _resolve(self, exc: BaseException | None) -> None:
        if self.events is not None:
            self.events.put_nowait(_END if exc is None else exc)
        if not self.future.done():
            if exc is None:
                self.future.set_result(self)
            else:
                self.future.set_exception(exc)
                self.future.exception()  # retrieved: no "never retrieved" warning when nobody waits


class Engine:
    """Owns the model; `submit` queues a job (raises QueueFull), the worker thread answers it."""

    def __init__(self, lm: ServedLM, max_batch: int = 16, max_queue: int = 64, wait_s: float = 0.005):
        if max_batch < 1 or max_queue < 1 or wait_s < 0:
            raise ValueError("max_batch and max_queue must be at least 1, wait_s at least 0")
        self.lm, self.max_batch, self.max_queue, self.wait_s = lm, max_batch, max_queue, wait_s
        self.pending: collections.deque[Job] = collections.deque()
        self.cond = threading.Condition()
        self.closed = False
        self.batches = 0
        self.steps = 0
        """Decoding steps run (continuous batching)."""
        self.rows_decoded = 0
        """Row-steps run: tokens generated by `steps` (continuous batching)."""
        self.most_jobs_in_step = 0
        """The most requests whose rows were decoded in one step."""
        self.joined = 0
        """Requests admitted into a batch that was already decoding."""
        self.inflight: list[Job] = []
        """The jobs the current `process` call owns (failed together if it raises)."""
        self.thread = threading.Thread(target=self._run, daemon=True, name="alignlab-serve-engine")
        self.thread.start()

    def submit(self, job: Job) -> None:
        with self.cond:
            if self.closed:
                raise ShuttingDown("the server is shutting down")
            if len(self.pending) >= self.max_queue:
                raise QueueFull(f"the server is busy ({self.max_queue} requests waiting); retry later")
            self.pending.append(job)
            self.cond.notify()

    def stop(self, timeout: float = 10.0) -> None:
        with self.cond:
            self.closed = True
            waiting = list(self.pending)
            self.pending.clear()
            self.cond.notify_all()
        for job in waiting:
            job.fail(ShuttingDown("the server is shutting down"))
        self.thread.join(timeout)

    def _take(self) -> list[Job] | None:
        with self.cond:
            while not self.pending and not self.closed:
                self.cond.wait()
            if self.closed:
                return None
            batch = [self.pending.popleft()]
            rows = len(batch[0].rows)
            until = time.monotonic() + self.wait_s
            while rows < self.max_batch:
                if not self.pending:
                    left = until - time.monotonic()
                    if left <= 0 or self.closed:
                        break
                    self.cond.wait(left)
                    continue
                if rows + len(self.pending[0].rows) > self.max_batch:
                    break
                job = self.pending.popleft()
                batch.append(job)
                rows += len(job.rows)
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            live = []
            for job in batch:
                if job.alive():
                    live.append(job)
                else:
                    job.done()
            self.inflight = list(live)
            try:
                self.process(live)
            except BaseException as exc:  # noqa: BLE001 - reported to every request of the batch
                log.exception("generation failed for a batch of %d requests", len(self.inflight))
                for job in self.inflight:
                    job.fail(exc)
            else:
                for job in self.inflight:
                    job.done()
            finally:
                self.inflight = []
                self.batches += 1

    def _join(self, room: int) -> list[Job]:
        """Jobs waiting in the queue whose rows fit `room` free slots (at least the oldest when `room` is the whole
        batch), without waiting."""
        taken: list[Job] = []
        with self.cond:
            while self.pending and not self.closed and len(self.pending[0].rows) <= room:
                job = self.pending.popleft()
                taken.append(job)
                room -= len(job.rows)
        return taken

    def _score(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            for i, (ids, k) in enumerate(job.score_requests):
                if job.alive():
                    job.scores[i] = score_prompt(self.lm, ids, k, job.alive)

    def process(self, jobs: Sequence[Job]) -> None:
        """Score the prompts and decode the rows of `jobs` and of the jobs that join them (in the worker thread)."""
        self._score(jobs)
        if SlotBatch.supported(self.lm):
            self._continuous(jobs)
            return
        owner = {id(r): job for job in jobs for r in job.rows}
        rows = sorted((r for job in jobs if job.alive() for r in job.rows), key=lambda r: len(r.seq.prompt_ids))
        for start in range(0, len(rows), self.max_batch):
            chunk = [r for r in rows[start:start + self.max_batch] if owner[id(r)].alive()]
            if chunk:
                decode_rows(self.lm, chunk, lambda r: owner[id(r)].alive())

    def _continuous(self, jobs: Sequence[Job]) -> None:
        """Decode in one `SlotBatch`: rows of `jobs` first, then of jobs that arrive while it runs, each admitted
        when finished rows free enough slots; a job is answered when its last row ends."""
        batch = SlotBatch(self.lm, self.max_batch)
        waiting: collections.deque[Row] = collections.deque()
        owner: dict[int, Job] = {}
        live: list[Job] = []

        def enqueue(new: Sequence[Job]) -> None:
            for job in new:
                live.append(job)
                for r in job.rows:
                    owner[id(r)] = job
                    waiting.append(r)

        enqueue([job for job in jobs if job.alive()])
        while True:
            if len(waiting) < batch.free:  # room beyond the rows already waiting: take queued requests
                joining = []
                for job in self._join(batch.free - len(waiting)):
                    if job.alive():
                        joining.append(job)
                    else:
                        job.done()
                self.inflight += joining
                self._score(joining)
                self.joined += len(joining) if batch.rows else 0
                enqueue(joining)
            admit = []
            while waiting and len(admit) < batch.free:
                row = waiting.popleft()
                if owner[id(row)].alive():
                    admit.append(row)
            if admit:
                batch.admit(admit)
            if not batch.rows:
                if waiting:
                    continue
                for job in live:
                    job.done()
                return
            self.most_jobs_in_step = max(self.most_jobs_in_step, len({id(owner[id(r)]) for r in batch.rows}))
            self.steps += 1
            self.rows_decoded += len(batch.rows)
            batch.step(lambda r: owner[id(r)].alive())
            still = []
            for job in live:  # answer each request as soon as its rows are done (or it is gone)
                if not job.alive() or all(r.finished for r in job.rows):
                    job.done()
                else:
                    still.append(job)
            live[:] = still
