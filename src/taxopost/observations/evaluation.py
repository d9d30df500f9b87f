"""Evaluate post-processing pipelines on a capture set: its model outputs against its identifications.

The rows are the model's own classifications (not derived from another) of the capture set's
detections whose occurrence has an identification; the truth is that identification. Scoring
and reports are :mod:`taxopost.evaluation`'s, exactly as for files: one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taxopost.core.category_map import CategoryMap as CoreCategoryMap
from taxopost.core.vectors import softmax
from taxopost.errors import InputError
from taxopost.evaluation.evaluate import Evaluation, evaluate_pipelines
from taxopost.evaluation.pipelines import Pipeline, parse_pipelines
from taxopost.evaluation.report import write_evaluation
from taxopost.ml.models import Algorithm
from taxopost.ml.operations import core_category_map
from taxopost.observations.models import CaptureSet, Classification, Identification
from taxopost.observations.vectors import stack
from taxopost.taxa.models import TaxaList
from taxopost.taxa.operations import load_taxonomy

#: What the review page evaluates when no pipelines are given: the model, both roll-up modes at
#: the platform's defaults, and each taxa list followed by a roll-up.
DEFAULT_PIPELINES = [
    {"name": "model output", "steps": []},
    {"name": "roll-up (lineage)", "steps": [{"task": "rank_rollup", "mode": "lineage"}]},
    {"name": "roll-up (distribution)", "steps": [{"task": "rank_rollup", "mode": "distribution"}]},
]


@dataclass(frozen=True)
class CaptureSetRows:
    """The evaluation rows of a capture set: probabilities, their category map and the truth."""

    scores: np.ndarray  # (n_rows, n_classes) float32
    category_map: CoreCategoryMap
    y_true: np.ndarray  # (n_rows,) core taxon ids
    algorithm: Algorithm
    groups: np.ndarray  # (n_rows,) int64: each row's occurrence id


def capture_set_rows(capture_set: CaptureSet, algorithm: str | None = None) -> CaptureSetRows:
    """Collect the identified model outputs of ``capture_set`` (one classifier's)."""
    detections = CaptureSet.detections_of(capture_set)
    outputs = Classification.objects.filter(detection__in=detections, applied_to=None, category_map__isnull=False)
    keys = sorted(set(outputs.values_list("algorithm__key", flat=True)))
    if algorithm is None:
        if len(keys) != 1:
            reason = "has no classifier output" if not keys else f"has outputs of several classifiers: {keys}"
            raise InputError("--algorithm", None, f"capture set {capture_set.name!r} {reason}; name one")
        algorithm = keys[0]
    found = Algorithm.objects.filter(key=algorithm, category_map__isnull=False).first()
    if found is None or algorithm not in keys:
        raise InputError("--algorithm", algorithm, f"no output of this classifier in capture set {capture_set.name!r}")
    identified = Identification.objects.filter(occurrence_id__in=detections.values("occurrence_id"))
    truth = {occurrence: current.taxon_id for occurrence, current in identified.current_by_occurrence().items()}
    rows = list(
        outputs.filter(algorithm=found, detection__occurrence_id__any_of=list(truth))
        .order_by("id")
        .values_list("detection__occurrence_id", "scores", "logits")
    )
    if not rows:
        raise InputError("capture set", capture_set.name, "no identified occurrence has an output of this classifier")
    taxonomy = load_taxonomy()
    category_map = core_category_map(found.category_map_id, taxonomy)
    scores = np.empty((len(rows), category_map.n_classes), dtype=np.float32)
    with_scores = [i for i, row in enumerate(rows) if row[1] is not None]
    with_logits = [i for i, row in enumerate(rows) if row[1] is None]
    if with_scores:
        scores[with_scores] = stack([rows[i][1] for i in with_scores], category_map.n_classes)
    if with_logits:
        scores[with_logits] = softmax(stack([rows[i][2] for i in with_logits], category_map.n_classes))
    y_true = taxonomy.to_core(truth[row[0]] for row in rows)
    known = y_true >= 0  # an identification outside the ranked taxonomy ("Not identifiable") scores nothing
    groups = np.array([row[0] for row in rows], dtype=np.int64)
    return CaptureSetRows(
        scores=scores[known], category_map=category_map, y_true=y_true[known], algorithm=found, groups=groups[known]
    )


def taxa_list_resolver(taxonomy=None):
    """Resolve a pipeline's ``taxa_list`` by the name of a taxa list stored on the platform."""
    taxonomy = taxonomy or load_taxonomy()

    def resolve(name: str) -> list[int]:
        taxa_list = TaxaList.objects.filter(name=name).first()
        if taxa_list is None:
            raise InputError("taxa_list", name, "no taxa list has this name")
        return [int(t) for t in taxonomy.to_core(taxa_list.taxa.values_list("id", flat=True)) if t >= 0]

    return resolve


def default_pipelines(category_map: CoreCategoryMap) -> list[Pipeline]:
    """The review page's pipelines: the defaults plus masking by each stored taxa list."""
    data = list(DEFAULT_PIPELINES)
    for name in TaxaList.objects.order_by("name").values_list("name", flat=True):
        data.append({"name": f"{name} + roll-up", "steps": [{"task": "class_masking", "taxa_list": name},
                                                             {"task": "rank_rollup"}]})  # fmt: skip
    return parse_pipelines(data, category_map, taxa_lists=taxa_list_resolver())


def evaluate_capture_set(
    capture_set: CaptureSet,
    pipelines: object | None = None,
    *,
    algorithm: str | None = None,
    progress=None,
) -> Evaluation:
    """Evaluate ``pipelines`` (parsed data, or None for :func:`default_pipelines`) on a capture set."""
    rows = capture_set_rows(capture_set, algorithm)
    if pipelines is None:
        parsed = default_pipelines(rows.category_map)
    else:
        parsed = parse_pipelines(pipelines, rows.category_map, taxa_lists=taxa_list_resolver())
    return evaluate_pipelines(
        rows.scores, rows.category_map, rows.y_true, parsed, groups=rows.groups, progress=progress
    )


def write_capture_set_evaluation(evaluation: Evaluation, output_dir: Path | str) -> dict[str, Path]:
    """Write the capture set's evaluation as :func:`~taxopost.evaluation.report.write_evaluation` does for files."""
    return write_evaluation(evaluation, output_dir)
