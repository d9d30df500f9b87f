"""Metrics of final predictions against ground truth, over a taxonomy.

Every function takes taxon-id vectors of shape ``(n_rows,)``: ``y_true`` (the human-verified
taxon), ``y_pred`` (a pipeline's final prediction) and, where needed, ``y_baseline`` (the
model's own argmax). A prediction is **correct** when it is the true taxon or one of its
ancestors (:meth:`Taxonomy.is_ancestor_or_self`): a roll-up to the right genus is correct, a
species inside a genus-level truth is not (it cannot be verified). Undefined ratios (no rows)
are NaN. docs/evaluation.md gives each formula.

Results are numbers, arrays and the dataclasses below; :mod:`taxopost.evaluation.report` alone
turns them into ``metrics.json`` and pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from taxopost.core.ranks import RANKS
from taxopost.core.taxonomy import Taxonomy
from taxopost.errors import InputError
from taxopost.evaluation._checks import check_same_length, check_taxa

#: Outcome classes of a row, in the order of :func:`outcome_classes` codes.
OUTCOMES: tuple[str, ...] = ("exact", "correct, coarser", "wrong")


@dataclass(frozen=True)
class Corrections:
    """Row by row, whether a baseline and a later prediction are correct, and what the change did.

    The one definition of *corrected* (baseline wrong, prediction correct) and *regressed*
    (baseline correct, prediction wrong) that the evaluation, the review page and the demo share.

    Attributes
    ----------
    baseline_correct, correct : ndarray of shape (n_rows,), bool
    """

    baseline_correct: np.ndarray
    correct: np.ndarray

    @property
    def corrected(self) -> np.ndarray:
        """ndarray of shape (n_rows,), bool: the baseline was wrong, the prediction is correct."""
        return self.correct & ~self.baseline_correct

    @property
    def regressed(self) -> np.ndarray:
        """ndarray of shape (n_rows,), bool: the baseline was correct, the prediction is wrong."""
        return self.baseline_correct & ~self.correct

    @property
    def still_correct(self) -> np.ndarray:
        """ndarray of shape (n_rows,), bool: both correct."""
        return self.baseline_correct & self.correct

    @property
    def still_wrong(self) -> np.ndarray:
        """ndarray of shape (n_rows,), bool: both wrong."""
        return ~self.baseline_correct & ~self.correct


@dataclass(frozen=True)
class OutcomeCounts:
    """How a pipeline's final predictions differ from the baseline's, in rows.

    ``changed`` (final differs from baseline) splits without overlap into ``corrected``
    (baseline wrong, final correct), ``regressed`` (baseline correct, final wrong),
    ``generalized`` (both correct, final coarser), ``specialized`` (both correct, final finer)
    and ``still_wrong`` (both wrong); ``unchanged`` is the rest.
    """

    changed: int
    corrected: int
    regressed: int
    generalized: int
    specialized: int
    still_wrong: int
    unchanged: int


@dataclass(frozen=True)
class MistakeSeverity:
    """How far the wrong predictions are from the truth, through their lowest common ancestor (LCA).

    Attributes
    ----------
    n_wrong : int
    lca_rank : dict of str to int
        Wrong rows by the rank of LCA(prediction, truth), fine to coarse, then ``"none"`` (no
        shared ancestor).
    mean_lca_height : float
        Mean of ``depth(truth) - depth(LCA)`` over the wrong rows (NaN when none).
    """

    n_wrong: int
    lca_rank: dict[str, int]
    mean_lca_height: float


@dataclass(frozen=True)
class ConfidenceBins:
    """Accuracy and roll-up rate by equal-width bins of input confidence over [0, 1].

    Attributes
    ----------
    lower, upper : ndarray of shape (n_bins,), float64
        Bin edges; the last bin includes 1.
    n : ndarray of shape (n_bins,), int64
    accuracy, baseline_accuracy : ndarray of shape (n_bins,), float64
    rollup_rate : ndarray of shape (n_bins,), float64
        Share of rows whose final prediction is at a coarser rank than the baseline's.
    changed_rate : ndarray of shape (n_bins,), float64
        Share whose final prediction differs from the baseline's.

    Rates are NaN in an empty bin.
    """

    lower: np.ndarray
    upper: np.ndarray
    n: np.ndarray
    accuracy: np.ndarray
    baseline_accuracy: np.ndarray
    rollup_rate: np.ndarray
    changed_rate: np.ndarray


@dataclass(frozen=True)
class MetricsSummary:
    """Every per-pipeline metric of this module (:func:`summarize`).

    Attributes
    ----------
    n : int
    accuracy, baseline_accuracy : float
        Share of correct final and baseline predictions.
    exact_accuracy : float
        Share of final predictions that are the true taxon itself.
    coverage, precision : dict of str to float
        Per final rank: :func:`rank_coverage` and :func:`rank_precision`.
    outcomes : OutcomeCounts
    hierarchical_precision, hierarchical_recall, hierarchical_f1 : float
    mistake_severity : MistakeSeverity
    confidence_bins : ConfidenceBins
    """

    n: int
    accuracy: float
    baseline_accuracy: float
    exact_accuracy: float
    coverage: dict[str, float]
    precision: dict[str, float]
    outcomes: OutcomeCounts
    hierarchical_precision: float
    hierarchical_recall: float
    hierarchical_f1: float
    mistake_severity: MistakeSeverity
    confidence_bins: ConfidenceBins


# -- doors: validate once, then trust --------------------------------------------------------


def is_correct(y_true: np.ndarray, y_pred: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """Whether each prediction is the true taxon or one of its ancestors.

    Returns
    -------
    ndarray of shape (n_rows,), bool
    """
    y_true, y_pred = _check(taxonomy, y_true=y_true, y_pred=y_pred)
    return _correct(y_true, y_pred, taxonomy)


def corrections(
    y_true: np.ndarray, y_pred: np.ndarray, y_baseline: np.ndarray, taxonomy: Taxonomy, *, allow_missing: bool = False
) -> Corrections:
    """Whether the baseline and the prediction of each row are correct, for counting corrections.

    Parameters
    ----------
    y_true, y_pred, y_baseline : ndarray of shape (n_rows,), int
        Taxon ids: the truth, a later prediction and the baseline it replaced.
    allow_missing : bool, default False
        Accept ``NO_TAXON`` in any of them (an identification or a prediction outside the
        ranked taxonomy, as the platform's data can hold): such a row is wrong on that side.

    Returns
    -------
    Corrections
    """
    y_true, y_pred, y_baseline = _check(
        taxonomy, allow_missing=allow_missing, y_true=y_true, y_pred=y_pred, y_baseline=y_baseline
    )
    return _corrections(y_true, y_pred, y_baseline, taxonomy)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray, taxonomy: Taxonomy) -> float:
    """Share of rows whose prediction is correct (the true taxon or an ancestor of it)."""
    y_true, y_pred = _check(taxonomy, y_true=y_true, y_pred=y_pred)
    return _mean(_correct(y_true, y_pred, taxonomy))


def outcome_classes(y_true: np.ndarray, y_pred: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """Each row's outcome as a code into :data:`OUTCOMES`: 0 exact, 1 correct but coarser, 2 wrong.

    Returns
    -------
    ndarray of shape (n_rows,), int8
    """
    y_true, y_pred = _check(taxonomy, y_true=y_true, y_pred=y_pred)
    return _outcomes(y_true, y_pred, taxonomy)


def rank_coverage(y_pred: np.ndarray, taxonomy: Taxonomy, *, ranks: Sequence[str] | None = None) -> dict[str, float]:
    """Share of rows whose final prediction is at each rank.

    Parameters
    ----------
    y_pred : ndarray of shape (n_rows,)
    ranks : sequence of str, optional
        Ranks to report, in this order (ranks the predictions reach but not listed are added,
        fine to coarse). Default: the ranks the predictions reach, fine to coarse.
    """
    (y_pred,) = _check(taxonomy, y_pred=y_pred)
    return _rank_coverage(y_pred, taxonomy, ranks)


def rank_precision(
    y_true: np.ndarray, y_pred: np.ndarray, taxonomy: Taxonomy, *, ranks: Sequence[str] | None = None
) -> dict[str, float]:
    """Per rank, the share of the predictions at that rank that are correct (NaN where none)."""
    y_true, y_pred = _check(taxonomy, y_true=y_true, y_pred=y_pred)
    return _rank_precision(y_true, y_pred, taxonomy, ranks)


def outcome_counts(y_true: np.ndarray, y_pred: np.ndarray, y_baseline: np.ndarray, taxonomy: Taxonomy) -> OutcomeCounts:
    """How a pipeline's final predictions differ from the baseline's (see :class:`OutcomeCounts`)."""
    y_true, y_pred, y_baseline = _check(taxonomy, y_true=y_true, y_pred=y_pred, y_baseline=y_baseline)
    return _outcome_counts(y_true, y_pred, y_baseline, taxonomy)


def mistake_severity(
    y_true: np.ndarray, y_pred: np.ndarray, taxonomy: Taxonomy, *, ranks: Sequence[str] | None = None
) -> MistakeSeverity:
    """How far wrong predictions are from the truth, through their lowest common ancestor (LCA).

    Over the wrong rows only: ``lca_rank`` counts the rank of LCA(prediction, truth) (``"none"``
    when they share no ancestor), and ``mean_lca_height`` is the mean of
    ``depth(truth) - depth(LCA)`` (taxonomy levels from the truth up to the LCA; an absent LCA
    counts as a virtual root above every root, at depth -1).

    Returns
    -------
    MistakeSeverity
    """
    y_true, y_pred = _check(taxonomy, y_true=y_true, y_pred=y_pred)
    return _mistake_severity(y_true, y_pred, taxonomy, ranks)


def hierarchical_scores(
    y_true: np.ndarray, y_pred: np.ndarray, taxonomy: Taxonomy, *, exclude: Sequence[int] | np.ndarray = ()
) -> tuple[float, float, float]:
    """Hierarchical precision, recall and F1 (Kiritchenko et al. 2006), micro-averaged.

    With ``Â_i`` and ``A_i`` the ancestor-or-self sets of row ``i``'s prediction and truth, minus
    the taxa in ``exclude``: ``hP = Σ|Â_i ∩ A_i| / Σ|Â_i|``, ``hR = Σ|Â_i ∩ A_i| / Σ|A_i|``,
    ``hF = 2 hP hR / (hP + hR)``.

    Parameters
    ----------
    exclude : sequence of int
        Taxa left out of every set: the common root(s) of the label space
        (:func:`~taxopost.evaluation._checks.common_ancestors`), which every prediction shares
        with every truth and would only inflate both scores.
    """
    y_true, y_pred = _check(taxonomy, y_true=y_true, y_pred=y_pred)
    return _hierarchical(y_true, y_pred, taxonomy, np.asarray(exclude, dtype=np.int64))


def confidence_bins(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_baseline: np.ndarray,
    confidence: np.ndarray,
    taxonomy: Taxonomy,
    *,
    n_bins: int = 10,
) -> ConfidenceBins:
    """Accuracy and roll-up rate by bins of input confidence.

    Parameters
    ----------
    confidence : ndarray of shape (n_rows,)
        The model's maximum probability per row (the baseline's score), in [0, 1].
    n_bins : int, default 10
        Equal-width bins over [0, 1]; the last bin includes 1.

    Returns
    -------
    ConfidenceBins
    """
    y_true, y_pred, y_baseline = _check(taxonomy, y_true=y_true, y_pred=y_pred, y_baseline=y_baseline)
    confidence = np.asarray(confidence, dtype=np.float64)
    check_same_length(y_true, confidence, fields=("y_true", "confidence"))
    return _confidence_bins(y_true, y_pred, y_baseline, confidence, taxonomy, check_n_bins(n_bins))


#: Confidence bins a report can hold: finer than a thousandth of [0, 1] says nothing more, and
#: each bin costs a pass over the rows (100,000 bins took minutes and gigabytes).
MAX_BINS = 1000


def check_n_bins(n_bins: object) -> int:
    """A number of bins from 1 to :data:`MAX_BINS`, or an InputError naming ``n_bins``."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise InputError("n_bins", n_bins, "must be a positive integer")
    if n_bins > MAX_BINS:
        raise InputError("n_bins", int(n_bins), f"at most {MAX_BINS} bins of the input confidence")
    return int(n_bins)


def _check(taxonomy: Taxonomy, *, allow_missing: bool = False, **arrays: np.ndarray) -> list[np.ndarray]:
    checked = [check_taxa(values, taxonomy, field=name, allow_missing=allow_missing) for name, values in arrays.items()]
    check_same_length(*checked, fields=tuple(arrays))
    return checked


# -- trusted implementations ------------------------------------------------------------------


def _mean(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else float("nan")


def _correct(y_true: np.ndarray, y_pred: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    return taxonomy.is_ancestor_or_self(y_pred, y_true)


def _corrections(y_true: np.ndarray, y_pred: np.ndarray, y_baseline: np.ndarray, taxonomy: Taxonomy) -> Corrections:
    return Corrections(
        baseline_correct=_correct(y_true, y_baseline, taxonomy), correct=_correct(y_true, y_pred, taxonomy)
    )


def _outcomes(y_true: np.ndarray, y_pred: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    correct = _correct(y_true, y_pred, taxonomy)
    return np.where(y_pred == y_true, 0, np.where(correct, 1, 2)).astype(np.int8)


def _report_ranks(codes: np.ndarray, ranks: Sequence[str] | None) -> list[str]:
    reached = [RANKS[c] for c in np.unique(codes)[::-1]]  # fine to coarse
    if ranks is None:
        return reached
    listed = list(ranks)
    return listed + [rank for rank in reached if rank not in listed]


def _rank_coverage(y_pred: np.ndarray, taxonomy: Taxonomy, ranks: Sequence[str] | None) -> dict[str, float]:
    codes = taxonomy.rank_codes[y_pred]
    counts = np.bincount(codes, minlength=len(RANKS))
    n = max(y_pred.size, 1)
    return {rank: float(counts[RANKS.index(rank)] / n) for rank in _report_ranks(codes, ranks)}


def _rank_precision(
    y_true: np.ndarray, y_pred: np.ndarray, taxonomy: Taxonomy, ranks: Sequence[str] | None
) -> dict[str, float]:
    codes = taxonomy.rank_codes[y_pred]
    correct = _correct(y_true, y_pred, taxonomy)
    totals = np.bincount(codes, minlength=len(RANKS))
    hits = np.bincount(codes, weights=correct, minlength=len(RANKS))
    out = {}
    for rank in _report_ranks(codes, ranks):
        code = RANKS.index(rank)
        out[rank] = float(hits[code] / totals[code]) if totals[code] else float("nan")
    return out


def _outcome_counts(
    y_true: np.ndarray, y_pred: np.ndarray, y_baseline: np.ndarray, taxonomy: Taxonomy
) -> OutcomeCounts:
    changed = y_pred != y_baseline
    outcome = _corrections(y_true, y_pred, y_baseline, taxonomy)
    coarser = taxonomy.rank_codes[y_pred] < taxonomy.rank_codes[y_baseline]
    both = changed & outcome.still_correct
    return OutcomeCounts(  # an unchanged row keeps its correctness: corrected and regressed rows all changed
        changed=int(changed.sum()),
        corrected=int(outcome.corrected.sum()),
        regressed=int(outcome.regressed.sum()),
        generalized=int((both & coarser).sum()),
        specialized=int((both & ~coarser).sum()),
        still_wrong=int((changed & outcome.still_wrong).sum()),
        unchanged=int((~changed).sum()),
    )


def _depth_or_virtual_root(taxa: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    return np.where(taxa >= 0, taxonomy.depth[np.maximum(taxa, 0)], -1).astype(np.int64)


def _mistake_severity(
    y_true: np.ndarray, y_pred: np.ndarray, taxonomy: Taxonomy, ranks: Sequence[str] | None
) -> MistakeSeverity:
    wrong = ~_correct(y_true, y_pred, taxonomy)
    truth, pred = y_true[wrong], y_pred[wrong]
    lca = taxonomy.lowest_common_ancestor(pred, truth).astype(np.int64)
    found = lca >= 0
    codes = taxonomy.rank_codes[lca[found]]
    counts = np.bincount(codes, minlength=len(RANKS))
    by_rank = {rank: int(counts[RANKS.index(rank)]) for rank in _report_ranks(codes, ranks)}
    by_rank["none"] = int((~found).sum())
    height = taxonomy.depth[truth].astype(np.int64) - _depth_or_virtual_root(lca, taxonomy)
    return MistakeSeverity(
        n_wrong=int(wrong.sum()),
        lca_rank=by_rank,
        mean_lca_height=float(height.mean()) if height.size else float("nan"),
    )


def _path_sizes(taxa: np.ndarray, taxonomy: Taxonomy, exclude: np.ndarray) -> np.ndarray:
    """|ancestor-or-self set minus ``exclude``| of each taxon (0 for NO_TAXON)."""
    size = _depth_or_virtual_root(taxa, taxonomy) + 1
    for taxon in exclude:
        size -= taxonomy.is_ancestor_or_self(np.full(taxa.shape, taxon), taxa)
    return size


def _hierarchical(
    y_true: np.ndarray, y_pred: np.ndarray, taxonomy: Taxonomy, exclude: np.ndarray
) -> tuple[float, float, float]:
    lca = taxonomy.lowest_common_ancestor(y_pred, y_true).astype(np.int64)
    shared = _path_sizes(lca, taxonomy, exclude).sum()
    predicted = _path_sizes(y_pred, taxonomy, exclude).sum()
    true = _path_sizes(y_true, taxonomy, exclude).sum()
    precision = float(shared / predicted) if predicted else float("nan")
    recall = float(shared / true) if true else float("nan")
    if not (precision + recall > 0):
        return precision, recall, float("nan") if np.isnan(precision + recall) else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall)


def _confidence_bins(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_baseline: np.ndarray,
    confidence: np.ndarray,
    taxonomy: Taxonomy,
    n_bins: int,
) -> ConfidenceBins:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.floor(confidence * n_bins).astype(np.int64), 0, n_bins - 1)
    n = np.bincount(bins, minlength=n_bins).astype(np.int64)

    def rate(mask: np.ndarray) -> np.ndarray:
        hits = np.bincount(bins, weights=mask, minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, hits / np.maximum(n, 1), np.nan)

    coarser = taxonomy.rank_codes[y_pred] < taxonomy.rank_codes[y_baseline]
    return ConfidenceBins(
        lower=edges[:-1],
        upper=edges[1:],
        n=n,
        accuracy=rate(_correct(y_true, y_pred, taxonomy)),
        baseline_accuracy=rate(_correct(y_true, y_baseline, taxonomy)),
        rollup_rate=rate(coarser),
        changed_rate=rate(y_pred != y_baseline),
    )


def summarize(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_baseline: np.ndarray,
    confidence: np.ndarray,
    taxonomy: Taxonomy,
    *,
    ranks: Sequence[str] | None = None,
    exclude: Sequence[int] | np.ndarray = (),
    n_bins: int = 10,
) -> MetricsSummary:
    """Every per-pipeline metric of this module at once, validating the vectors once.

    ``ranks``, ``exclude`` and ``n_bins`` are those of :func:`rank_coverage`,
    :func:`hierarchical_scores` and :func:`confidence_bins`.

    Returns
    -------
    MetricsSummary
    """
    y_true, y_pred, y_baseline = _check(taxonomy, y_true=y_true, y_pred=y_pred, y_baseline=y_baseline)
    confidence = np.asarray(confidence, dtype=np.float64)
    check_same_length(y_true, confidence, fields=("y_true", "confidence"))
    exclude = np.asarray(exclude, dtype=np.int64)
    n_bins = check_n_bins(n_bins)
    precision, recall, f1 = _hierarchical(y_true, y_pred, taxonomy, exclude)
    return MetricsSummary(
        n=int(y_true.size),
        accuracy=_mean(_correct(y_true, y_pred, taxonomy)),
        baseline_accuracy=_mean(_correct(y_true, y_baseline, taxonomy)),
        exact_accuracy=_mean(y_pred == y_true),
        coverage=_rank_coverage(y_pred, taxonomy, ranks),
        precision=_rank_precision(y_true, y_pred, taxonomy, ranks),
        outcomes=_outcome_counts(y_true, y_pred, y_baseline, taxonomy),
        hierarchical_precision=precision,
        hierarchical_recall=recall,
        hierarchical_f1=f1,
        mistake_severity=_mistake_severity(y_true, y_pred, taxonomy, ranks),
        confidence_bins=_confidence_bins(y_true, y_pred, y_baseline, confidence, taxonomy, n_bins),
    )


__all__ = [
    "OUTCOMES",
    "ConfidenceBins",
    "Corrections",
    "MetricsSummary",
    "MistakeSeverity",
    "OutcomeCounts",
    "accuracy",
    "confidence_bins",
    "corrections",
    "hierarchical_scores",
    "is_correct",
    "mistake_severity",
    "outcome_classes",
    "outcome_counts",
    "rank_coverage",
    "rank_precision",
    "summarize",
]
