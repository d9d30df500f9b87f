"""Metrics per occurrence: one prediction per individual, whatever number of detections it has.

A monitoring project reports occurrences, not detections. Without a consensus step each of an
occurrence's rows has its own prediction, and the occurrence takes the row with the highest
final score, the first row on ties (Antenna's rule; the platform's determination also takes
the highest score, but breaks ties by the most recent classification, which a score file has not).
After a consensus step every row of an occurrence already has the same prediction, so the rule
picks it. The metrics are then the per-row definitions (docs/evaluation.md) applied to those
predictions, one per occurrence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from taxopost.core.consensus import check_groups
from taxopost.core.taxonomy import Taxonomy
from taxopost.errors import InputError
from taxopost.evaluation.metrics import accuracy, corrections, rank_coverage, rank_precision


@dataclass(frozen=True)
class OccurrenceMetrics:
    """A pipeline's figures over occurrences (``metrics.json``: ``occurrences``).

    Attributes
    ----------
    n : int
        Occurrences.
    accuracy : float
    coverage, precision : dict of str to float
        Per rank of the occurrence's prediction.
    corrected, regressed : int
        Against the baseline's prediction of the occurrence (the model's argmax, best row).
    """

    n: int
    accuracy: float
    coverage: dict[str, float]
    precision: dict[str, float]
    corrected: int
    regressed: int


@dataclass(frozen=True)
class ConsensusCounts:
    """What one consensus step of a pipeline does with the occurrences (``metrics.json``: ``consensus``).

    The counts depend on the occurrences' sizes only: the platform's task splits the same rows
    the same way, and reports its reasons in rows (``rows_passed_through`` here) where these
    count occurrences.

    Attributes
    ----------
    step : int
        The step's index in its pipeline.
    min_detections : int
    combined, rows_combined : int
        Occurrences of at least ``min_detections`` rows, and their rows.
    one_detection : int
        Occurrences of one row: passed through.
    too_few : int
        Occurrences of two rows or more but fewer than ``min_detections``: passed through.
    rows_passed_through : int
        The rows of those two kinds.
    """

    step: int
    min_detections: int
    combined: int
    rows_combined: int
    one_detection: int
    too_few: int
    rows_passed_through: int


def consensus_counts(groups: np.ndarray, min_detections: int, *, step: int = 0) -> ConsensusCounts:
    """How many occurrences a consensus step with ``min_detections`` combines, and how many pass through.

    ``groups``: ndarray of shape (n_rows,), int, each row's occurrence id (``>= 0``).
    """
    groups = check_groups(groups, np.size(groups))
    sizes = np.unique(groups, return_counts=True)[1]
    combined = sizes >= min_detections
    return ConsensusCounts(
        step=step,
        min_detections=int(min_detections),
        combined=int(combined.sum()),
        rows_combined=int(sizes[combined].sum()),
        one_detection=int((sizes == 1).sum()),
        too_few=int(((sizes > 1) & ~combined).sum()),
        rows_passed_through=int(sizes[~combined].sum()),
    )


def occurrence_rows(groups: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The row each occurrence is decided by: its highest score, the first row on ties.

    Parameters
    ----------
    groups : ndarray of shape (n_rows,), int
        Each row's occurrence id (``>= 0``).
    scores : ndarray of shape (n_rows,), float
        Each row's final score.

    Returns
    -------
    ndarray of shape (n_occurrences,), intp
        Row indices, one per occurrence in ascending id order.
    """
    groups = check_groups(groups, len(scores))
    scores = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((np.arange(groups.size), -scores, groups))
    first = np.r_[True, groups[order][1:] != groups[order][:-1]] if groups.size else np.zeros(0, bool)
    return order[first]


def check_one_truth(y_true: np.ndarray, groups: np.ndarray, taxonomy: Taxonomy | None = None) -> np.ndarray:
    """``groups`` checked (:func:`check_groups`) and refused where an occurrence's rows have
    different true taxa: an occurrence is one individual. The error names two such rows, which
    mean the same in any id numbering (a CSV's text ids are numbered when read)."""
    groups = check_groups(groups, len(y_true))
    y_true = np.asarray(y_true)
    order = np.argsort(groups, kind="stable")
    starts = np.r_[True, groups[order][1:] != groups[order][:-1]] if groups.size else np.zeros(0, bool)
    first_row = np.repeat(order[starts], np.diff(np.r_[np.flatnonzero(starts), groups.size]))
    mixed = np.flatnonzero(y_true[first_row] != y_true[order])
    if mixed.size:
        first, row = int(first_row[mixed[0]]), int(order[mixed[0]])
        taxa = [taxonomy.names[y_true[i]] if taxonomy is not None else str(y_true[i]) for i in (first, row)]
        raise InputError(
            "groups", f"rows {first} and {row}", f"one occurrence, two true taxa ({taxa[0]!r} and {taxa[1]!r} in the "
            "ground truth); an occurrence is one individual", row=row,
        )  # fmt: skip
    return groups


def occurrence_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    pred_score: np.ndarray,
    y_baseline: np.ndarray,
    baseline_score: np.ndarray,
    groups: np.ndarray,
    taxonomy: Taxonomy,
    *,
    ranks: Sequence[str] | None = None,
) -> OccurrenceMetrics:
    """Accuracy, coverage and precision by rank, corrected and regressed over occurrences.

    Parameters
    ----------
    y_true, y_pred, y_baseline : ndarray of shape (n_rows,), int
        Taxon ids per row: the truth (the same for every row of an occurrence), a pipeline's
        final prediction and the baseline's.
    pred_score, baseline_score : ndarray of shape (n_rows,), float
        Their scores, which pick each occurrence's row (:func:`occurrence_rows`).
    groups : ndarray of shape (n_rows,), int
    ranks : sequence of str, optional
        Ranks to report coverage and precision at.

    Raises
    ------
    InputError
        For groups of the wrong length or with negative ids, or an occurrence whose rows have
        different true taxa.
    """
    groups = check_one_truth(y_true, groups, taxonomy)
    y_true = np.asarray(y_true)
    chosen = occurrence_rows(groups, pred_score)
    base = occurrence_rows(groups, baseline_score)
    truth = y_true[chosen]
    predicted = np.asarray(y_pred)[chosen]
    changes = corrections(truth, predicted, np.asarray(y_baseline)[base], taxonomy)
    return OccurrenceMetrics(
        n=int(chosen.size),
        accuracy=accuracy(truth, predicted, taxonomy),
        coverage=rank_coverage(predicted, taxonomy, ranks=ranks),
        precision=rank_precision(truth, predicted, taxonomy, ranks=ranks),
        corrected=int(changes.corrected.sum()),
        regressed=int(changes.regressed.sum()),
    )
