"""The post-processing steps taxopost records in a file it writes back, so that a later pass knows its own output.

MegaDetector detections and SpeciesNet entries keep a list under :data:`STEPS_KEY`, oldest
first, one ``{"task": ..., ...}`` per step whose output is in the file. Each step also keeps
what it replaced (``input`` for MegaDetector, ``before`` for SpeciesNet; see their modules), so
the rules the format writers share are:

- a pass of the task of the last step replaces that step: it reads what the step replaced and,
  where its result leaves the row as it was, undoes the step;
- a pass of another task chains: it reads the current output and appends its own step.

Antenna needs no such list: each step is a classification of its own, named by its algorithm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from taxopost.errors import InputError
from taxopost.io.predictions.detections import short

#: The key of the list of steps in a MegaDetector detection or a SpeciesNet entry.
STEPS_KEY = "postprocessing"
#: The tasks whose results are written back to files (``Revision.task``).
TASKS = ("rank_rollup", "class_masking")


def read_steps(owner: dict, where: str, source: Path, payload: str, kind: type) -> list[dict]:
    """``owner``'s steps, checked: a list of ``{"task": str}`` objects, each with an optional ``payload`` of ``kind``.

    Raises
    ------
    InputError
        Naming the JSON path and the value of a malformed list, step, task or payload.
    """
    steps = owner.get(STEPS_KEY)
    if steps is None:
        return []
    at = f"{where}.{STEPS_KEY}"
    if not isinstance(steps, list) or not steps:
        raise InputError(at, short(steps), "must be a non-empty list of {task, ...} steps", source=str(source))
    for k, step in enumerate(steps):
        if not isinstance(step, dict):
            raise InputError(f"{at}[{k}]", short(step), "a step must be a JSON object", source=str(source))
        task = step.get("task")
        if not isinstance(task, str) or not task:
            raise InputError(f"{at}[{k}].task", short(task), "a step needs the name of its task", source=str(source))
        if payload in step and not isinstance(step[payload], kind):
            raise InputError(
                f"{at}[{k}].{payload}", short(step[payload]), f"must be a JSON {_JSON[kind]}", source=str(source)
            )
    return steps


def replaced_by(steps: list[dict], task: str | None) -> bool:
    """Whether a pass of ``task`` replaces the last of ``steps`` (it is that task's output)."""
    return task is not None and bool(steps) and steps[-1]["task"] == task


def check_task(task: str | None) -> None:
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, not {task!r}")


def rows_to_write(changed: np.ndarray, replaces: np.ndarray | None) -> tuple[list[int], np.ndarray]:
    """The rows a writer touches (the changed ones, and those whose earlier output of the task it
    undoes), and per row whether it replaces that output (all False for a file read for no task)."""
    replaces = np.zeros(changed.shape, dtype=bool) if replaces is None else replaces
    return np.flatnonzero(changed | replaces).tolist(), replaces


_JSON = {list: "list", dict: "object"}
