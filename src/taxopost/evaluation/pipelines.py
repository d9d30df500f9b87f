"""Pipelines: named chains of post-processing steps, run side by side on the same rows.

A pipeline file (JSON or YAML) is a list of ``{"name": ..., "steps": [...]}``; each step is
``{"task": <key>, <config fields>}`` for any registered task that runs offline
(:mod:`taxopost.tasks`), validated by the task's own config model. In a pipeline file a masking
step's ``taxa_list`` is a file path, relative to the pipeline file. The empty pipeline
(``"steps": []``) is the baseline: the model's argmax.

Steps chain: a transforming step (``offline="transform"``: class masking, occurrence
consensus) produces scores that the next step consumes; occurrence consensus also needs each
row's occurrence (``groups``) and gives every row of an occurrence its combined vector. The
decision step (``offline="decision"``: the roll-up) produces a taxon
and an aggregate, not a score vector, so it can only be the last step.

Running reuses work: each distinct prefix of transforming steps is computed once, and each
distinct (prefix, roll-up order, mode) gets one aggregation pass (:func:`~taxopost.core.rollup.rollup_candidates`)
whatever the number of pipelines that differ only in thresholds; thresholds are then applied
with :func:`~taxopost.core.rollup.apply_thresholds`, which gives exactly what
:func:`~taxopost.core.rollup.rank_rollup` gives.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from taxopost.core.category_map import CategoryMap
from taxopost.core.rollup import RollupResult, apply_thresholds, check_ranks_present, rollup_candidates
from taxopost.errors import TOO_DEEP, InputError
from taxopost.io import read_text
from taxopost.tasks import OfflineStep, TaskConfig, TaskSpec, all_specs, get_spec, parse_config
from taxopost.tasks.rank_rollup import RankRollupConfig

_PIPELINE_KEYS = ("name", "steps")


@dataclass(frozen=True)
class Step:
    """One step: a task's key, its validated config and, for a transforming task, what it resolved.

    Attributes
    ----------
    task : str
        A registered task's key whose spec runs offline.
    config : TaskConfig
    prepared : OfflineStep or None
        Transforming steps only: what the task resolved from its config (a masking step's kept
        classes, in ``prepared.state``).
    """

    task: str
    config: TaskConfig
    prepared: OfflineStep | None = field(default=None, compare=False, repr=False)
    identity: tuple = ()

    @property
    def spec(self) -> type[TaskSpec]:
        return get_spec(self.task)

    @property
    def transforms(self) -> bool:
        return self.spec.offline == "transform"

    def key(self) -> tuple:
        """What determines the step's output (a masking step's list by its taxa, not its path)."""
        if self.transforms:
            return self.identity
        return (
            self.task,
            tuple(self.config.order),
            tuple(sorted(self.config.thresholds.items())),
            self.config.mode,
        )

    def describe(self) -> dict[str, Any]:
        """The step as written in a pipeline file (defaults filled in)."""
        data = self.config.model_dump(exclude_none=True)
        return {"task": self.task, **data}


@dataclass(frozen=True)
class Pipeline:
    """A named chain of steps; no step is the baseline (the model's argmax)."""

    name: str
    steps: tuple[Step, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def rollup(self) -> RankRollupConfig | None:
        """The config of the final roll-up (decision) step, if the pipeline ends with one."""
        if self.steps and not self.steps[-1].transforms:
            return self.steps[-1].config  # type: ignore[return-value]
        return None

    @property
    def transforms(self) -> tuple[Step, ...]:
        """The transforming steps, in order (every step but the final roll-up)."""
        return tuple(step for step in self.steps if step.transforms)

    def describe(self) -> list[dict[str, Any]]:
        return [step.describe() for step in self.steps]


TaxaListResolver = Callable[[str], list[int]]


def read_pipelines(
    path: Path | str, category_map: CategoryMap, *, taxa_lists: TaxaListResolver | None = None
) -> list[Pipeline]:
    """Read a pipeline file (JSON or YAML) and validate it against ``category_map``.

    Raises
    ------
    InputError
        Naming the file and ``pipelines[i].steps[j].<field>`` with the value: not JSON/YAML, not
        a list, a missing or repeated name, an unknown task, a bad config, a roll-up followed by
        another step, an unreadable or all-excluding taxa list.
    """
    path = Path(path)
    text = read_text(path)
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        reason = str(exc).splitlines()[0]
        raise InputError("file", str(path), f"is not valid {kind} ({reason})") from None
    except RecursionError:
        raise InputError("file", str(path), TOO_DEEP) from None
    try:
        return parse_pipelines(data, category_map, base_dir=path.parent, taxa_lists=taxa_lists)
    except InputError as exc:
        raise exc.with_source(str(path)) from None


def parse_pipelines(
    data: object,
    category_map: CategoryMap,
    *,
    base_dir: Path | str = ".",
    taxa_lists: TaxaListResolver | None = None,
) -> list[Pipeline]:
    """Validate parsed pipeline data; taxa-list paths are resolved relative to ``base_dir``.

    Parameters
    ----------
    data : list of mapping
        ``[{"name": str, "steps": [{"task": str, **config}, ...]}, ...]``; a mapping with a single
        ``pipelines`` key holding that list is accepted too.
    category_map : CategoryMap
    base_dir : path-like
        Where relative taxa-list paths start.
    taxa_lists : callable, optional
        Resolves a masking step's ``taxa_list`` to taxon ids instead of reading a file (the
        platform passes one that looks lists up by name); raises InputError when it cannot.
    """
    if isinstance(data, Mapping) and set(data) == {"pipelines"}:
        data = data["pipelines"]
    if not isinstance(data, list) or not data:
        raise InputError(
            "pipelines",
            data if data == [] else _kind(data),
            'must be a non-empty list of {"name": ..., "steps": [...]}',
        )
    pipelines: list[Pipeline] = []
    names: dict[str, int] = {}
    for i, item in enumerate(data):
        where = f"pipelines[{i}]"
        if not isinstance(item, Mapping):
            raise InputError(where, _kind(item), 'must be an object {"name": ..., "steps": [...]}')
        for key in item:
            if key not in _PIPELINE_KEYS:
                raise InputError(f"{where}.{key}", item[key], "unknown key; a pipeline has name and steps")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{where}.name", name, "every pipeline needs a non-empty name")
        name = name.strip()
        if name in names:
            raise InputError(f"{where}.name", name, f"also the name of pipelines[{names[name]}]")
        names[name] = i
        steps = item.get("steps", [])
        if not isinstance(steps, list):
            raise InputError(f"{where}.steps", _kind(steps), "must be a list of steps (empty for the baseline)")
        for j, step in enumerate(steps[:-1]):  # the chain's shape first, then each config
            task = step.get("task") if isinstance(step, Mapping) else None
            if task in _decision_keys():
                after = steps[j + 1]
                raise InputError(
                    f"{where}.steps[{j + 1}].task",
                    after.get("task") if isinstance(after, Mapping) else _kind(after),
                    f"steps[{j}] is a {task}, whose output is a taxon, not a score vector, so no step can "
                    f"follow it; put {', '.join(_transform_keys())} before {task}",
                )
        parsed = [
            _parse_step(step, f"{where}.steps[{j}]", category_map, Path(base_dir), taxa_lists)
            for j, step in enumerate(steps)
        ]
        warnings = tuple(warning for _, step_warnings in parsed for warning in step_warnings)
        pipelines.append(Pipeline(name, tuple(step for step, _ in parsed), warnings))
    return pipelines


def _parse_step(
    data: object, where: str, category_map: CategoryMap, base_dir: Path, taxa_lists: TaxaListResolver | None
) -> tuple[Step, list[str]]:
    if not isinstance(data, Mapping):
        raise InputError(where, _kind(data), 'must be an object {"task": ..., <config>}')
    task = data.get("task")
    offline = _transform_keys() + _decision_keys()
    if task not in offline:
        known = f"known tasks are {', '.join(offline)}"
        try:
            get_spec(task)
        except InputError:
            raise InputError(f"{where}.task", task, f"unknown task; {known}") from None
        raise InputError(f"{where}.task", task, f"runs only on the platform, not on score matrices; {known}")
    spec = get_spec(task)
    config = parse_config(spec.config_model, {k: v for k, v in data.items() if k != "task"}, prefix=f"{where}.")
    if spec.offline == "decision":  # ranks the label space lacks: refused here, naming the step
        given = "order" if "order" in data else "thresholds"
        check_ranks_present(category_map.taxonomy, config.order, field=f"{where}.{given}")
        return Step(task, config), []
    prepared = spec.prepare_offline(config, category_map, where=where, base_dir=base_dir, taxa_lists=taxa_lists)
    return Step(task, config, prepared, prepared.key), list(prepared.warnings)


def _transform_keys() -> list[str]:
    return [spec.key for spec in all_specs() if spec.offline == "transform"]


def _decision_keys() -> list[str]:
    return [spec.key for spec in all_specs() if spec.offline == "decision"]


def _kind(value: object) -> object:
    return value if isinstance(value, str | int | float | bool | type(None)) else type(value).__name__


# -- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """The model's own prediction, shared by every pipeline.

    Attributes
    ----------
    source_class : ndarray (n_rows,), intp
        The argmax over classes that have a taxon (the roll-up's source).
    taxon : ndarray (n_rows,), int32
    confidence : ndarray (n_rows,), float
        The argmax's probability (after softmax for logits): the input confidence.
    """

    source_class: np.ndarray
    taxon: np.ndarray
    confidence: np.ndarray


@dataclass(frozen=True)
class PipelineOutput:
    """What one pipeline predicts for every row.

    Attributes
    ----------
    pipeline : Pipeline
    taxon : ndarray (n_rows,), int32
        The final prediction.
    rollup : RollupResult or None
        The final roll-up step's result (None without one).
    candidates : RollupResult or None
        The candidates of the roll-up's input at every rank of its order (for threshold sweeps).
    score : ndarray (n_rows,), float, or None
        The final prediction's score (a roll-up's accepted aggregate, else the winner's
        probability); None for the baseline, whose score is ``Baseline.confidence``.
    """

    pipeline: Pipeline
    taxon: np.ndarray
    rollup: RollupResult | None = None
    candidates: RollupResult | None = None
    score: np.ndarray | None = None


def count_passes(pipelines: Sequence[Pipeline]) -> int:
    """The number of passes over the score matrix :func:`run_pipelines` makes (for progress bars)."""
    prefixes = {_prefix_key(p) for p in pipelines if p.transforms}  # each transformed from the raw input
    aggregations = {(_prefix_key(p), tuple(p.rollup.order), p.rollup.mode) for p in pipelines if p.rollup is not None}
    needs_baseline = not any(p.rollup is not None and not p.transforms for p in pipelines)
    return sum(len(prefix) for prefix in prefixes) + len(aggregations) + int(needs_baseline)


def check_groups_given(pipelines: Sequence[Pipeline]) -> None:
    """Refuse pipelines with a step that needs each row's occurrence, when no groups are given."""
    for index, pipeline in enumerate(pipelines):
        for number, step in enumerate(pipeline.steps):
            if step.transforms and step.spec.needs_groups:
                raise InputError(
                    f"pipelines[{index}].steps[{number}]", step.task, f"pipeline {pipeline.name!r} needs the "
                    "occurrence of each row for this step (--groups FILE)",
                )  # fmt: skip


def run_pipelines(
    values: np.ndarray,
    category_map: CategoryMap,
    pipelines: Sequence[Pipeline],
    *,
    logits: bool = False,
    groups: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[Baseline, list[PipelineOutput]]:
    """Run every pipeline on the same rows.

    Parameters
    ----------
    values : ndarray of shape (n_rows, n_classes)
        Probabilities, or logits with ``logits=True``.
    category_map : CategoryMap
    pipelines : sequence of Pipeline
    groups : ndarray of shape (n_rows,), int, optional
        Each row's occurrence: needed by steps that combine an occurrence's rows
        (``occurrence_consensus``); a pipeline holding one is an error without it.
    progress : callable, optional
        Called with a number of rows after each chunk of each pass; the total is
        ``n_rows * count_passes(pipelines)``.

    Returns
    -------
    baseline : Baseline
    outputs : list of PipelineOutput, in the order of ``pipelines``
    """
    if groups is None:
        check_groups_given(pipelines)
    outputs: dict[int, PipelineOutput] = {}
    candidates_cache: dict[tuple, RollupResult] = {}
    by_prefix: dict[tuple, list[int]] = {}
    for index, pipeline in enumerate(pipelines):
        by_prefix.setdefault(_prefix_key(pipeline), []).append(index)
    for prefix, members in by_prefix.items():  # one transformed matrix alive at a time
        matrix, is_logits, normalized, winner, score = values, logits, True, None, None
        for step in pipelines[members[0]].transforms:
            extra = {"groups": groups} if step.spec.needs_groups else {}
            out = step.spec.transform(
                matrix,
                category_map,
                step.config,
                step.prepared,
                logits=is_logits,
                normalized=normalized,
                progress=progress,
                **extra,
            )
            matrix, is_logits, normalized, winner = out.scores, False, out.normalized, out.winner
            score = out.scores[np.arange(len(winner)), winner]
        for index in members:
            pipeline = pipelines[index]
            config = pipeline.rollup
            if config is None:  # the baseline, or transforms only
                taxon = None if winner is None else category_map.class_taxa[winner]
                outputs[index] = PipelineOutput(pipeline, taxon, score=score)
                continue
            key = (prefix, tuple(config.order), config.mode)
            candidates = candidates_cache.get(key)
            if candidates is None:
                candidates = candidates_cache[key] = rollup_candidates(
                    matrix,
                    category_map,
                    order=config.order,
                    mode=config.mode,
                    logits=is_logits,
                    progress=progress,
                )
            result = apply_thresholds(candidates, config.thresholds)
            outputs[index] = PipelineOutput(pipeline, result.taxon, result, candidates, score=result.score)
    raw = next((c for (prefix, *_), c in candidates_cache.items() if prefix == ()), None)
    if raw is None:
        order = [category_map.taxonomy.rank_of(int(category_map.class_taxa[category_map.resolved][0]))]
        raw = rollup_candidates(values, category_map, order=order, logits=logits, progress=progress)
    baseline = Baseline(raw.source_class, raw.source_taxon, raw.source_score)
    results = []
    for index in range(len(pipelines)):
        output = outputs[index]
        if output.taxon is None:
            output = replace(output, taxon=baseline.taxon, score=baseline.confidence)
        results.append(output)
    return baseline, results


def _prefix_key(pipeline: Pipeline) -> tuple:
    return tuple(step.key() for step in pipeline.transforms)
