"""The post-processing steps a MegaDetector detection records, so that a later pass knows taxopost's own output.

A detection taxopost wrote holds its current answer in ``classifications``, the model's own
pairs in :data:`ORIGINAL_KEY`, and the steps that led from one to the other under
``postprocessing`` (``taxopost.io.predictions.steps``), oldest first::

    "postprocessing": [{"task": "class_masking"}, {"task": "rank_rollup", "input": [["1", 0.74], ...]}]

A step without ``input`` read the model's own pairs; a later one keeps the pairs it read (the
classifications it overwrote). A pass of the last step's task reads that step's input and
replaces (or undoes) the step; any other pass reads ``classifications`` and appends its step.
"""

from __future__ import annotations

from pathlib import Path

from taxopost.errors import InputError
from taxopost.io.predictions.detections import short
from taxopost.io.predictions.steps import STEPS_KEY, read_steps, replaced_by

#: Where a detection's original classifications are kept when post-processing replaces them.
ORIGINAL_KEY = "classifications_before_postprocessing"

#: Where a detection's input pairs are read from (``read_from``).
CURRENT, _ORIGINAL, _INPUT = 0, 1, 2


def read_from(det: dict, task: str | None, where: str, path: Path) -> int:
    """Where a pass of ``task`` reads the detection's pairs: the current ones, unless its last step is
    that task's, whose input it reads (the model's own pairs for a first step)."""
    steps = read_steps(det, where, path, "input", list)
    if steps and ORIGINAL_KEY not in det:
        raise InputError(
            f"{where}.{ORIGINAL_KEY}", None, f"is missing: a detection with {STEPS_KEY} keeps the model's pairs there",
            source=str(path),
        )  # fmt: skip
    if not replaced_by(steps, task):
        return CURRENT
    return _INPUT if "input" in steps[-1] else _ORIGINAL


def pairs_at(det: dict, source: int) -> object:
    """The pairs read from ``source`` (as the file has them: not checked)."""
    if source == _INPUT:
        return det[STEPS_KEY][-1]["input"]
    return det.get(ORIGINAL_KEY if source == _ORIGINAL else "classifications")


def suffix(det: dict, source: int) -> str:
    """The JSON path of the pairs read, within the detection."""
    if source == _INPUT:
        return f"{STEPS_KEY}[{len(det[STEPS_KEY]) - 1}].input"
    return ORIGINAL_KEY if source == _ORIGINAL else "classifications"


def listed_pairs(det: dict, source: int, where: str, path: Path) -> list | None:
    """The pairs read (and the current ones, which a write replaces), each None or a list."""
    for at in {source, CURRENT}:
        pairs = pairs_at(det, at)
        if pairs is not None and not isinstance(pairs, list):
            raise InputError(
                f"{where}.{suffix(det, at)}", short(pairs), "must be a list of [id, confidence] pairs",
                source=str(path),
            )  # fmt: skip
    return pairs_at(det, source)


def write_step(det: dict, task: str, pairs: list | None, replacing: bool) -> None:
    """Put a pass's result in a detection and record its step; ``pairs`` None undoes the step it replaces.

    The first step's input is the model's own pairs, kept in ``ORIGINAL_KEY``; a later step
    keeps its input (the classifications it overwrote) in the step. With no step left, the
    detection is back to the model's own pairs and neither key.
    """
    steps = list(det.get(STEPS_KEY) or ())
    if replacing:
        before = steps.pop().get("input")  # None: the model's own pairs
    elif pairs is None:
        return
    else:
        before = det["classifications"] if steps or ORIGINAL_KEY in det else None
        det.setdefault(ORIGINAL_KEY, det["classifications"])
    if pairs is None:
        det["classifications"] = det[ORIGINAL_KEY] if before is None else before
    else:
        det["classifications"] = pairs
        steps.append({"task": task} if before is None else {"task": task, "input": before})
    if steps:
        det[STEPS_KEY] = steps
    else:
        del det[STEPS_KEY]
        if before is None:
            del det[ORIGINAL_KEY]
