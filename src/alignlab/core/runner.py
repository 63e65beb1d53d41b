"""The runner: executes an experiment's grid (configurations x seeds) on a local process
pool or on Ray, writing one record per finished cell to the store as it arrives.

Workers never touch the store; the parent commits each record in its own transaction, so
a SIGKILL at any moment loses at most the cells in flight, and the next run skips the
cells already done (keyed by experiment, config hash, seed and code version: the version of
the code that cell can run, alignlab.core.codeversion).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
import threading
import time
import traceback
import uuid
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Iterator

from alignlab.core import codeversion, registry
from alignlab.core.config import BaseConfig, stable_hash
from alignlab.core.errors import UserError
from alignlab.core.record import RunRecord, clean_metrics
from alignlab.core.seeding import seed_everything
from alignlab.core.store import Store

BACKENDS = ("local", "ray")


@dataclasses.dataclass(frozen=True)
class Task:
    experiment: str
    config: dict[str, Any]
    config_hash: str
    seed: int
    code_version: str
    runs_dir: str
    run_id: str
    backend: str
    components: tuple[tuple[str, str], ...] | None = None
    """The registered components counted in `code_version` (kind, full name); a cell that resolves
    another one is stored under an untracked version (re-run every time). None: not checked."""


@dataclasses.dataclass
class RunSummary:
    experiment: str
    run_id: str
    total: int
    skipped: int
    ok: int
    failed: int
    seconds: float
    untracked: int = 0
    """Cells that resolved a registered component their code version did not count."""


def cell_hash(experiment: str, params: dict[str, Any]) -> str:
    return stable_hash({"experiment": experiment, "params": params})


def cell_dir(runs_dir: str | Path, experiment: str, config_hash: str, seed: int) -> Path:
    return Path(runs_dir) / "cells" / experiment / f"{config_hash}-s{seed}"


def plan(experiment: Any, seeds: int) -> list[tuple[dict[str, Any], str, int]]:
    """[(params, config hash, seed)] for the whole grid, in a stable order."""
    out = []
    seen = set()
    for params in experiment.grid():
        h = cell_hash(experiment.name, params)
        if h in seen:
            continue
        seen.add(h)
        cap = experiment.max_seeds(params)
        for seed in range(seeds if cap is None else min(seeds, cap)):
            out.append((params, h, seed))
    return out


def execute(task: Task) -> RunRecord:
    """Run one cell in the current process; never raises (errors become records)."""
    registry.load_all()
    started = time.time()
    record = RunRecord(
        experiment=task.experiment, config=task.config, config_hash=task.config_hash,
        seed=task.seed, status="ok", code_version=task.code_version, run_id=task.run_id,
        backend=task.backend, started_at=started,
    )
    try:
        cls = registry.get("experiment", task.experiment)
        exp = cls()
        workdir = cell_dir(task.runs_dir, task.experiment, task.config_hash, task.seed)
        workdir.mkdir(parents=True, exist_ok=True)
        seed_everything(task.seed)
        with codeversion.recording_resolutions() as used:
            result = exp.run_cell(dict(task.config), task.seed, workdir)
        if task.components is not None:
            untracked = used - set(task.components) - {("experiment", task.experiment)}
            if untracked:
                record.code_version = codeversion.mark_untracked(task.code_version, untracked)
        record.metrics = clean_metrics(result.metrics)
        record.data = result.data
        record.artifacts = list(result.artifacts)
    except BaseException as exc:  # noqa: BLE001 - a failing cell is a result, the sweep goes on
        if isinstance(exc, KeyboardInterrupt):
            raise
        record.status = "error"
        record.error = f"{type(exc).__name__}: {exc}"
        record.traceback = traceback.format_exc()
    record.duration_s = time.time() - started
    return record


def _exit_with_parent(parent: int) -> None:
    """A worker whose runner was killed (SIGKILL leaves it orphaned) stops at once instead
    of finishing a cell nobody will store."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


def _init_worker(threads: int) -> None:
    # One BLAS / torch thread per worker: on a shared 2-core box oversubscription is the
    # main cause of slow sweeps (see docs/benchmarks.md).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    registry.load_all()


def _run_local(tasks: list[Task], workers: int) -> Iterator[RunRecord]:
    if workers <= 1:
        # In-process: no pool start-up cost, and the easiest path to debug.
        for task in tasks:
            yield execute(task)
        return
    ctx = multiprocessing.get_context("spawn")  # fork is unsafe with torch / Ray threads
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(1,))
    try:
        pending = {pool.submit(execute, t) for t in tasks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_ray(tasks: list[Task], workers: int, address: str | None) -> Iterator[RunRecord]:
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs the 'ray' package: pip install ray") from None
    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = dict(
            include_dashboard=False, log_to_driver=False, configure_logging=False,
            runtime_env={"env_vars": {"ALIGNLAB_PLUGINS": os.environ.get("ALIGNLAB_PLUGINS", ""),
                                      "OMP_NUM_THREADS": "1"}},
        )
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = workers
        try:
            ray.init(**kwargs)
        except Exception as exc:  # noqa: BLE001 - turn Ray's start-up failures into one line
            raise UserError(f"cannot start or reach Ray{' at ' + address if address else ''}: {exc}") from None
        started_here = True
    try:
        remote = ray.remote(num_cpus=1)(execute)
        pending = [remote.remote(t) for t in tasks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield ray.get(ref)
    finally:
        if started_here:
            ray.shutdown()


def run(
    name: str,
    config: BaseConfig | None = None,
    *,
    seeds: int | None = None,
    quick: bool = False,
    workers: int = 2,
    backend: str = "local",
    address: str | None = None,
    fresh: bool = False,
    runs_dir: str | Path = "runs",
    progress: Callable[[int, int], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Run (or resume) experiment `name`'s grid and store one record per cell.

    `progress(done, todo)` is called after each cell; `on_start(todo, skipped)` once.
    """
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if workers < 1:
        raise UserError(f"--workers must be at least 1 (got {workers})")
    cls = registry.get("experiment", name)
    if config is None:
        config = cls.Config.quick() if quick else cls.Config()
    n_seeds = seeds if seeds is not None else (cls.quick_seeds if quick else cls.default_seeds)
    if n_seeds < 1:
        raise UserError(f"--seeds must be at least 1 (got {n_seeds})")
    exp = cls(config)
    grid = plan(exp, n_seeds)
    # One version per cell: the code it can run (computed once per distinct set of components).
    versions = codeversion.CellVersions(exp.name)
    keyed = [(params, h, seed, versions.version(params)) for params, h, seed in grid]
    runs_dir = str(Path(runs_dir).resolve())
    store = Store(runs_dir)
    try:
        done: set[tuple[str, int, str]] = set()
        if not fresh:
            for version in sorted({v for *_, v in keyed}):
                done |= {(h, seed, version) for h, seed in store.done_keys(exp.name, version)}
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        tasks = [
            Task(exp.name, params, h, seed, version, runs_dir, run_id, backend, versions.components(params))
            for params, h, seed, version in keyed
            if (h, seed, version) not in done
        ]
        skipped = len(grid) - len(tasks)
        store.begin_run(run_id, exp.name, backend, " ".join(sys.argv), len(grid), len(tasks))
        if on_start:
            on_start(len(tasks), skipped)
        started = time.time()
        ok = failed = untracked = 0
        stream = _run_local(tasks, workers) if backend == "local" else _run_ray(tasks, workers, address)
        status = "interrupted"
        try:
            for i, record in enumerate(stream, 1):
                record.run_id = run_id
                stray = codeversion.is_untracked(record.code_version)
                if stray:
                    untracked += 1
                    warnings.warn(
                        f"{exp.name}: a cell resolved registered components its code version does not count "
                        f"({record.code_version.partition(codeversion.UNTRACKED)[2]}), by a name neither in its "
                        "parameters nor written in its code; it is stored as untracked and re-runs on every run",
                        stacklevel=2,
                    )
                store.put(record, replace_ok=fresh or stray)
                ok += record.status == "ok"
                failed += record.status != "ok"
                if progress:
                    progress(i, len(tasks))
            status = "done"
        finally:
            store.end_run(run_id, status)
        return RunSummary(exp.name, run_id, len(grid), skipped, ok, failed, time.time() - started, untracked)
    finally:
        store.close()


