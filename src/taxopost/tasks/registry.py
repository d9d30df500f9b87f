"""The one list of post-processing tasks: every :class:`~taxopost.tasks.base.TaskSpec` defined.

The built-in specs are the modules of this package (one per task); defining a spec anywhere
else (a plugin, a test) registers it as well. Nothing else keeps a list of tasks.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from taxopost.errors import InputError

if TYPE_CHECKING:
    from taxopost.tasks.base import TaskSpec

#: Modules of this package that are the framework, not tasks.
_FRAMEWORK = frozenset({"base", "config", "describe", "registry"})
#: The kind of algorithm a classifier is (every other kind is a task's key).
CLASSIFICATION = "classification"

_SPECS: dict[str, type[TaskSpec]] = {}
_loaded = False


def register(spec: type[TaskSpec]) -> None:
    """Called by ``TaskSpec.__init_subclass__``; a key may be registered once (re-imports aside)."""
    existing = _SPECS.get(spec.key)
    if existing is not None and existing.__qualname__ != spec.__qualname__:
        raise TypeError(f"two task specs share the key {spec.key!r}: {existing.__qualname__} and {spec.__qualname__}")
    if spec.key == CLASSIFICATION:
        raise TypeError(f"{CLASSIFICATION!r} is the kind of a classifier, not a task key")
    _SPECS[spec.key] = spec


def unregister(key: str) -> None:
    """Forget a task (a test's own task, once the test is over)."""
    _SPECS.pop(key, None)


def load_builtin() -> None:
    """Import every task module of this package once."""
    global _loaded
    if _loaded:
        return
    package = importlib.import_module("taxopost.tasks")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in _FRAMEWORK and not module.name.startswith("_"):
            importlib.import_module(f"taxopost.tasks.{module.name}")
    _loaded = True


def get_spec(key: object, *, field: str = "task") -> type[TaskSpec]:
    """The spec registered as ``key``, or an InputError listing the known keys."""
    load_builtin()
    spec = _SPECS.get(key) if isinstance(key, str) else None
    if spec is None:
        raise InputError(field, key, f"unknown task; known tasks: {', '.join(sorted(_SPECS))}")
    return spec


def all_specs() -> list[type[TaskSpec]]:
    """Every registered spec, by key."""
    load_builtin()
    return [_SPECS[key] for key in sorted(_SPECS)]


def task_keys() -> list[str]:
    return [spec.key for spec in all_specs()]


def check_algorithm_kind(value: str) -> str:
    """An algorithm's ``task_type``: a classifier, or a registered task's key."""
    if value != CLASSIFICATION and value not in task_keys():
        raise InputError("task_type", value, f"must be {CLASSIFICATION!r} or a task key ({', '.join(task_keys())})")
    return value
