"""The registry of post-processing tasks: one entry per task file, looked up by key."""

from __future__ import annotations

import importlib

from taxopost.errors import InputError

_TASKS: dict[str, type] = {}
BUILTIN_MODULES = (
    "taxopost.postprocessing.tasks.rank_rollup",
    "taxopost.postprocessing.tasks.class_masking",
    "taxopost.postprocessing.tasks.small_size_filter",
)


def register(task_class: type) -> type:
    """Class decorator: make a task available under its ``key``."""
    key = task_class.key
    if key in _TASKS and _TASKS[key] is not task_class:
        raise ValueError(f"two post-processing tasks share the key {key!r}")
    _TASKS[key] = task_class
    return task_class


def load_builtin_tasks() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def get_task(key: str) -> type:
    """The task class registered as ``key``, or an InputError listing the known keys."""
    load_builtin_tasks()
    try:
        return _TASKS[key]
    except KeyError:
        raise InputError("task", key, f"unknown task; known tasks: {', '.join(sorted(_TASKS))}") from None


def all_tasks() -> list[type]:
    load_builtin_tasks()
    return [_TASKS[key] for key in sorted(_TASKS)]
