"""The platform's adapters of the registered tasks (:mod:`taxopost.tasks.registry`), by key.

An adapter registers itself when its class is defined. The built-in ones live in
``taxopost.postprocessing.tasks.<key>`` and are imported the first time their task is asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from taxopost.errors import InputError
from taxopost.tasks.registry import all_specs, get_spec

if TYPE_CHECKING:
    from taxopost.postprocessing.base import PostProcessingTask

_ADAPTERS: dict[str, type[PostProcessingTask]] = {}
ADAPTER_PACKAGE = "taxopost.postprocessing.tasks"


def register(task_class: type[PostProcessingTask]) -> None:
    """Called when an adapter class is defined; one adapter per task key."""
    existing = _ADAPTERS.get(task_class.key)
    if existing is not None and existing.__qualname__ != task_class.__qualname__:
        raise TypeError(f"two post-processing tasks share the key {task_class.key!r}")
    _ADAPTERS[task_class.key] = task_class


def unregister(key: str) -> None:
    """Forget an adapter (a test's own task, once the test is over)."""
    _ADAPTERS.pop(key, None)


def _load(key: str) -> type[PostProcessingTask] | None:
    if key not in _ADAPTERS and importlib.util.find_spec(f"{ADAPTER_PACKAGE}.{key}") is not None:
        importlib.import_module(f"{ADAPTER_PACKAGE}.{key}")
    return _ADAPTERS.get(key)


def get_task(key: object) -> type[PostProcessingTask]:
    """The adapter of task ``key``; an InputError for an unknown task or one that runs only offline."""
    spec = get_spec(key)
    adapter = _load(spec.key)
    if adapter is None:
        runnable = ", ".join(task.key for task in all_tasks())
        raise InputError("task", key, f"runs only in evaluation pipelines, not on the platform; tasks: {runnable}")
    return adapter


def all_tasks() -> list[type[PostProcessingTask]]:
    """The adapter of every registered task that has one, by key."""
    return [adapter for spec in all_specs() if (adapter := _load(spec.key)) is not None]


def load_builtin_tasks() -> None:
    """Import every task's adapter (app start-up, so that the admin sees them all)."""
    all_tasks()
