"""Threshold sweeps: risk-coverage curves of the roll-up, rank by rank, from one aggregation pass.

A rank's candidate (lineage: the source's ancestor; distribution: the rank's argmax) and its
aggregate do not depend on the thresholds, so :func:`~taxopost.core.rollup.rollup_candidates`
computes them once and every threshold after that is a comparison. For rank ``r`` of the
order, with the finer ranks kept at their configured thresholds:

- the rows *reaching* ``r`` are those not accepted at a finer rank;
- at threshold ``t``, the rows *accepted* at ``r`` are the reaching rows whose rank-``r``
  aggregate is ``>= t`` (exactly the rows :func:`~taxopost.core.rollup.apply_thresholds` accepts
  at ``r`` with ``t`` in place of ``r``'s threshold: counted for the whole grid at once by
  :func:`accepted_counts`, one sort per rank, and proven equal on random taxonomies by
  ``tests/evaluation/test_sweep.py::test_sweep_counts_equal_apply_thresholds_on_random_taxonomies``);
- ``coverage(t) = accepted / reaching`` and ``risk(t) = wrong accepted / accepted`` (a candidate
  is right when it is the true taxon or one of its ancestors);
- ``AURC`` is the area under risk over coverage, computed exactly over every distinct aggregate
  value (not the grid): ``Σ_k (c_k - c_{k-1}) risk_k`` over thresholds from high to low, ``c_0 = 0``
  (Geifman et al. 2019's empirical AURC, with ties accepted together). Lower is better; it
  spans only the coverage the rank can reach (rows with no candidate at ``r`` are never accepted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from taxopost.core.rollup import RollupResult, apply_thresholds
from taxopost.core.taxonomy import Taxonomy
from taxopost.errors import InputError
from taxopost.evaluation._checks import check_taxa
from taxopost.evaluation.metrics import is_correct

#: The default sweep: 100 thresholds from 1.0 down to 0.01.
DEFAULT_GRID: np.ndarray = np.round(np.linspace(1.0, 0.01, 100), 6)


@dataclass(frozen=True)
class RiskCoverage:
    """One rank's risk-coverage curve over a grid of thresholds (high to low).

    Attributes
    ----------
    rank : str
    threshold : float
        The rank's configured threshold (the operating point).
    thresholds : ndarray of shape (n_thresholds,), float64
        Descending.
    n_reaching : int
        Rows not accepted at a finer rank (the denominator of coverage).
    n_accepted, n_errors : ndarray of shape (n_thresholds,), int64
    coverage : ndarray of shape (n_thresholds,), float64
        ``n_accepted / n_reaching`` (NaN when no row reaches the rank).
    risk : ndarray of shape (n_thresholds,), float64
        ``n_errors / n_accepted`` (NaN where nothing is accepted).
    aurc : float
        Exact empirical area under the curve (NaN when nothing can be accepted).
    """

    rank: str
    threshold: float
    thresholds: np.ndarray
    n_reaching: int
    n_accepted: np.ndarray
    n_errors: np.ndarray
    coverage: np.ndarray
    risk: np.ndarray
    aurc: float


def check_grid(grid: object, *, field: str = "grid") -> np.ndarray:
    """Thresholds as a descending float64 vector of distinct values in (0, 1]."""
    values = np.asarray(grid, dtype=np.float64).ravel()
    if values.size == 0:
        raise InputError(field, [], "give at least one threshold")
    bad = values[~((values > 0) & (values <= 1))]
    if bad.size:
        raise InputError(field, bad[:5].tolist(), "thresholds must be in (0, 1]")
    return np.unique(values)[::-1].copy()


def risk_coverage_curves(
    candidates: RollupResult,
    y_true: np.ndarray,
    taxonomy: Taxonomy,
    *,
    thresholds: Mapping[str, float],
    grid: np.ndarray | None = None,
) -> dict[str, RiskCoverage]:
    """Risk-coverage curves of every rank of ``candidates.order``.

    Parameters
    ----------
    candidates : RollupResult
        From :func:`~taxopost.core.rollup.rollup_candidates` (one aggregation pass).
    y_true : ndarray of shape (n_rows,), int
        True taxon ids.
    taxonomy : Taxonomy
    thresholds : mapping of rank to float
        The configured thresholds: finer ranks keep theirs while a rank is swept.
    grid : array-like of shape (n_thresholds,), optional
        Thresholds in (0, 1]; default :data:`DEFAULT_GRID` (100 values).

    Returns
    -------
    dict of rank to RiskCoverage, fine to coarse
    """
    y_true = check_taxa(y_true, taxonomy, field="y_true", n_rows=len(candidates))
    grid = DEFAULT_GRID if grid is None else check_grid(grid)
    base = apply_thresholds(candidates, thresholds)  # validates the thresholds against the order
    curves = {}
    for r, rank in enumerate(candidates.order):
        reaching = (base.accepted_rank < 0) | (base.accepted_rank >= r)
        scores, wrong = rank_column(candidates, r, reaching, y_true, taxonomy)
        n_reaching = int(reaching.sum())
        limits = grid.astype(candidates.evidence_score.dtype)
        n_accepted, n_errors = accepted_counts(scores, wrong, limits)
        with np.errstate(invalid="ignore", divide="ignore"):
            coverage = n_accepted / n_reaching if n_reaching else np.full(grid.size, np.nan)
            risk = np.where(n_accepted > 0, n_errors / np.maximum(n_accepted, 1), np.nan)
        curves[rank] = RiskCoverage(
            rank=rank,
            threshold=float(base.thresholds[rank]),
            thresholds=grid,
            n_reaching=n_reaching,
            n_accepted=n_accepted,
            n_errors=n_errors,
            coverage=coverage,
            risk=risk,
            aurc=exact_aurc(scores, wrong, n_reaching),
        )
    return curves


def rank_column(
    candidates: RollupResult, r: int, rows: np.ndarray, y_true: np.ndarray, taxonomy: Taxonomy
) -> tuple[np.ndarray, np.ndarray]:
    """Aggregates and wrongness of rank ``r``'s candidates on ``rows`` that have a candidate.

    Returns
    -------
    scores : ndarray of shape (m,), the evidence dtype
    wrong : ndarray of shape (m,), bool
        The candidate is neither the true taxon nor one of its ancestors.
    """
    scores = candidates.evidence_score[rows, r]
    taxa = candidates.evidence_taxon[rows, r]
    has = ~np.isnan(scores)
    wrong = ~is_correct(y_true[rows][has], taxa[has], taxonomy)
    return scores[has], wrong


def accepted_counts(scores: np.ndarray, wrong: np.ndarray, limits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each limit ``t``: how many scores are ``>= t``, and how many of those are wrong.

    One sort, then a binary search per limit: O((m + K) log m) for m scores and K limits.
    ``limits`` must have the scores' dtype (the roll-up compares in the input's precision).
    """
    order = np.argsort(scores, kind="stable")
    ascending = scores[order]
    wrong_before = np.concatenate([[0], np.cumsum(wrong[order], dtype=np.int64)])
    first = np.searchsorted(ascending, limits, side="left")  # first index with score >= t
    n_accepted = (scores.size - first).astype(np.int64)
    n_errors = (wrong_before[-1] - wrong_before[first]).astype(np.int64)
    return n_accepted, n_errors


def exact_aurc(scores: np.ndarray, wrong: np.ndarray, n_reaching: int) -> float:
    """Area under risk over coverage with every distinct score as a threshold (ties together)."""
    if scores.size == 0 or n_reaching == 0:
        return float("nan")
    distinct = np.unique(scores)[::-1]  # high to low
    n_accepted, n_errors = accepted_counts(scores, wrong, distinct)
    coverage = n_accepted / n_reaching
    widths = np.diff(np.concatenate([[0.0], coverage]))
    return float(np.sum(widths * n_errors / n_accepted))
