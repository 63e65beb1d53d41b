"""Every registered alignlab eval as an Inspect AI task, and the `alignlab` model provider.

Inspect AI (UK AISI) loads this module through the `inspect_ai` setuptools entry point of the
alignlab distribution (pyproject.toml), so `inspect eval alignlab/sycophancy-are-you-sure-v0
--model alignlab/embedded` works from any folder. Each eval is registered twice: under its full
name (`alignlab/<name>-vN`) and without the version (`alignlab/<name>`, the latest version).
Task parameters (`-T key=value`): `limit` (alignlab's stratified item sample, the same items as
`alignlab eval --limit N --seed S`), `seed`, `overrides` (eval config `key=value` strings,
as `alignlab eval --set`), and `data` / `data_format` (a file of your own items, as
`alignlab eval --data FILE --data-format F`; the task's dataset, display name and metadata then
name that file and its sha256). One sample per alignlab item; see solver.py for how its protocol
and scoring are reused. https://inspect.aisi.org.uk/extensions.html#setuptools-entry-points

This folder has no __init__.py on purpose: alignlab's registry imports every module of the
`alignlab.evals` package (core/registry.load_all, through pkgutil.walk_packages, which skips
folders without __init__.py), and importing inspect_ai costs seconds and is optional.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample

from alignlab.core import registry
from alignlab.evals.inspect import provider  # noqa: F401  (registers the `alignlab` model provider)
from alignlab.evals.inspect.solver import (alignlab_ci, alignlab_metrics, alignlab_protocol, alignlab_score,
                                           eval_classes, make_eval)


def build_task(eval_name: str, limit: int | None = None, seed: int = 0,
               overrides: list[str] | str | None = None, data: str | None = None, data_format: str = "auto",
               task_name: str | None = None) -> Task:
    """The Inspect task for one registered eval (what `alignlab/<eval>` resolves to); `data`: a file of
    the user's own items (evals/datasets.py) instead of the shipped set."""
    from alignlab.evals.datasets import load_for_eval

    name = eval_name if eval_name in eval_classes() else registry.resolve("eval", eval_name)
    ev = make_eval(name, overrides)
    if limit is not None and int(limit) < 1:
        raise ValueError(f"limit must be at least 1 (got {limit})")
    loaded = load_for_eval(type(ev), str(data), data_format) if data else None
    ev.data = loaded
    items = ev.select(None if limit is None else int(limit), int(seed))
    samples = [Sample(id=s.id, input=s.question, target=s.gold or "",
                      metadata={"index": i, "category": s.category, "scenario": json.loads(s.to_json())})
               for i, s in enumerate(items)]
    args = dict(eval_name=name, overrides=overrides, seed=int(seed))
    cls = type(ev)
    extra: dict[str, Any] = {}
    if loaded is not None:  # labelled with the user's file, never as the shipped set
        extra["display_name"] = f"alignlab/{task_name or name} on {loaded.label}"
    return Task(
        dataset=MemoryDataset(samples, name=loaded.label if loaded is not None else name,
                              location=str(data) if loaded is not None else None),
        solver=alignlab_protocol(**args),
        scorer=alignlab_score(**args),
        metrics=[alignlab_metrics(**args), alignlab_ci(**args)],
        version=int(name.rsplit("-v", 1)[1]) if "-v" in name else 0,
        metadata={"alignlab_eval": name, "title": cls.title, "source": cls.source,
                  "specified": cls.specified_label, "intended": cls.intended_label,
                  "config": ev.config.to_dict(), "alignlab_data": None if loaded is None else loaded.to_dict()},
        **extra,
    )


def _task_factory(eval_name: str, task_name: str) -> Callable[..., Task]:
    def factory(limit: int | None = None, seed: int = 0, overrides: list[str] | str | None = None,
                data: str | None = None, data_format: str = "auto") -> Task:
        return build_task(eval_name, limit=limit, seed=seed, overrides=overrides, data=data, data_format=data_format,
                          task_name=task_name)

    factory.__name__ = task_name.replace("-", "_")
    factory.__doc__ = eval_classes()[eval_name].summary
    return task(name=task_name)(factory)


def register_all() -> dict[str, Any]:
    """Register `alignlab/<eval>` for every registered eval, and `alignlab/<eval without -vN>`
    for its latest version."""
    latest: dict[str, str] = {}
    for full in eval_classes():
        base, version = full.rsplit("-v", 1)
        if base not in latest or int(version) > int(latest[base].rsplit("-v", 1)[1]):
            latest[base] = full
    tasks = {full: _task_factory(full, full) for full in eval_classes()}
    tasks.update({base: _task_factory(full, base) for base, full in latest.items()})
    return tasks


TASKS = register_all()
