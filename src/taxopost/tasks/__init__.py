"""Post-processing tasks as specifications, without Django: one module per task, one registry.

See :mod:`taxopost.tasks.base` for what a spec holds and docs/platform.md ("Adding a task").
"""

from taxopost.tasks.base import CliOption, OfflineStep, TaskConfig, TaskSpec, Transformed
from taxopost.tasks.config import config_error, config_field_errors, parse_config
from taxopost.tasks.registry import all_specs, get_spec, task_keys

__all__ = [
    "CliOption",
    "OfflineStep",
    "TaskConfig",
    "TaskSpec",
    "Transformed",
    "all_specs",
    "config_error",
    "config_field_errors",
    "get_spec",
    "parse_config",
    "task_keys",
]
