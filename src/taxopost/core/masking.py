"""Class masking: restrict predictions to a taxa list and recompute the winner.

Excluded classes get probability 0. From logits, the kept classes are softmaxed on their own
(excluded = -inf, shifted by the kept maximum). From scores, the kept classes are renormalised
(``reweight=True``) or keep their absolute probabilities (``reweight=False``). The winner is the
argmax over kept classes. A row changes when masking moves its winner or removes more than
``min_removed_mass`` of probability; other rows are left alone (their result would not change
in any way that matters, and a new classification per row would only bury the real changes).
With ``winner_only`` a row changes only when its winning taxon does (Antenna's #1377): a
smaller record, at the price of rows whose kept scores are not the masked ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from taxopost.core._validation import as_rows, check_logits, check_probabilities, dense_chunks, for_each_block
from taxopost.core.category_map import CategoryMap
from taxopost.core.chunks import chunk_rows_for
from taxopost.core.sparse import SparseRows
from taxopost.errors import InputError

#: Removing less probability than this, without moving the winner, is not a change.
MIN_REMOVED_MASS = 1e-4


@dataclass(frozen=True)
class MaskingResult:
    """Per-row outcome of class masking.

    Attributes
    ----------
    scores : ndarray of shape (n_rows, n_classes), input dtype, or SparseRows, or None
        The masked probabilities (None when not requested); for sparse input, the same pairs
        with their masked scores (an excluded class's pair scores 0), plus, in a row with no
        kept mass under ``reweight``, a pair for every kept class it lacked: densified, the
        sparse result is the dense one.
    source_class, winner : ndarray (n_rows,), intp
        The argmax before masking (over all classes) and after (over kept classes).
    source_score, score : ndarray (n_rows,), input dtype
        Their probabilities, before and after masking.
    removed_mass : ndarray (n_rows,), float64
        Probability the excluded classes held before masking.
    changed : ndarray (n_rows,), bool
        The winner moved, or more than ``min_removed_mass`` was removed (with ``winner_only``:
        the winning taxon changed).
    no_kept_mass : ndarray (n_rows,), bool
        Rows whose kept classes all had probability 0 (scores input only); reweighting them
        gives a uniform distribution over the kept classes.
    """

    scores: np.ndarray | SparseRows | None
    source_class: np.ndarray
    source_score: np.ndarray
    winner: np.ndarray
    score: np.ndarray
    removed_mass: np.ndarray
    changed: np.ndarray
    no_kept_mass: np.ndarray

    def __len__(self) -> int:
        return self.winner.size


def class_masking(
    values: np.ndarray | SparseRows,
    category_map: CategoryMap,
    keep: np.ndarray,
    *,
    logits: bool = False,
    reweight: bool = True,
    return_scores: bool = True,
    min_removed_mass: float = MIN_REMOVED_MASS,
    winner_only: bool = False,
    chunk_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> MaskingResult:
    """Mask the classes outside ``keep`` and recompute each row's winner.

    Parameters
    ----------
    values : array-like of shape (n_rows, n_classes), or SparseRows
        Probabilities (rows summing to at most 1), or logits with ``logits=True``. float32 stays
        float32; sparse (top-k) rows are densified a chunk at a time.
    category_map : CategoryMap
    keep : ndarray of shape (n_classes,), bool
        Classes to keep, e.g. ``category_map.admitted_by(taxa)``. Must keep at least one class.
    reweight : bool, default True
        Renormalise the kept probabilities (from logits: softmax over kept classes only).
        False keeps absolute probabilities, so rows sum to less than 1.
    return_scores : bool, default True
        Whether to return the full masked matrix (skip it to keep memory bounded).
    min_removed_mass : float, default 1e-4
        A row whose winner stays is a change only when masking removes more than this.
    winner_only : bool, default False
        A row is a change only when its winning taxon changes, whatever mass was removed.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (category_map.n_classes,):
        raise InputError("keep", keep.shape, f"must be a boolean vector of {category_map.n_classes} classes")
    keep = keep & category_map.resolved
    if not keep.any():
        raise InputError("taxa_list", "keep", "keeps none of the classes of the category map")
    field = "logits" if logits else "scores"
    matrix = as_rows(values, category_map.n_classes, field=field, logits=logits)
    sparse = isinstance(matrix, SparseRows)
    n, dtype = matrix.shape[0], matrix.dtype
    if not return_scores:
        scores = None
    elif sparse:
        scores = matrix.with_values(np.empty_like(matrix.values))
    else:
        scores = np.empty_like(matrix)
    result = MaskingResult(
        scores=scores,
        source_class=np.empty(n, dtype=np.intp),
        source_score=np.empty(n, dtype=dtype),
        winner=np.empty(n, dtype=np.intp),
        score=np.empty(n, dtype=dtype),
        removed_mass=np.empty(n, dtype=np.float64),
        changed=np.empty(n, dtype=bool),
        no_kept_mass=np.zeros(n, dtype=bool),
    )
    excluded = ~keep

    def work(chunk: np.ndarray, lo: int, hi: int, offset: int) -> None:
        """Validate and mask rows ``lo:hi`` of ``chunk`` (row ``offset`` of the input) while in cache."""
        block = chunk[lo:hi]
        rows = np.arange(hi - lo)
        if logits:
            check_logits(block, field=field, row_offset=offset + lo)
            masked, source_class, source_score, removed = _mask_logits(block, keep, reweight)
        else:
            stats = check_probabilities(block, field=field, row_offset=offset + lo)
            source_class = stats.argmax
            source_score = stats.maxs
            masked = block * keep  # excluded -> 0
            # Exactly 0 when every excluded class scored 0 (a sum of non-negatives cannot cancel).
            # The rows were checked finite and non-negative: a floating-point flag raised inside
            # the BLAS kernel is spurious (numpy/numpy#24067), not a warning for the user.
            with np.errstate(invalid="ignore"):
                removed = (block @ excluded.astype(dtype)).astype(np.float64)
            kept = masked.sum(axis=1, keepdims=True, dtype=np.float64)
            empty = kept[:, 0] <= 0
            result.no_kept_mass[offset + lo : offset + hi] = empty  # flagged with or without reweighting
            if reweight:
                if empty.any():  # no information left among kept classes: uniform over them
                    masked[empty] = keep / keep.sum()
                    kept[empty] = 1.0
                masked /= kept.astype(dtype)
        # From logits, the best kept logit: without reweighting, the kept probabilities may all
        # have underflowed to 0 under the global softmax, and their argmax is then the first kept class.
        ranked, floor = (block, -np.inf) if logits else (masked, -1)
        winner = np.where(keep, ranked, floor).argmax(axis=1)
        out = slice(offset + lo, offset + hi)
        result.source_class[out] = source_class
        result.source_score[out] = source_score
        result.winner[out] = winner
        result.score[out] = masked[rows, winner]
        result.removed_mass[out] = removed
        if winner_only:
            result.changed[out] = category_map.class_taxa[winner] != category_map.class_taxa[source_class]
        else:
            result.changed[out] = (removed > min_removed_mass) | (winner != source_class)
        if isinstance(result.scores, SparseRows):  # the masked score of each pair, in place
            a, b = int(matrix.indptr[offset + lo]), int(matrix.indptr[offset + hi])
            pair_rows = np.repeat(rows, np.diff(matrix.indptr[offset + lo : offset + hi + 1]))
            result.scores.values[a:b] = masked[pair_rows, matrix.indices[a:b]]
        elif result.scores is not None:
            result.scores[out] = masked

    for lo, hi, chunk in dense_chunks(matrix, chunk_rows or chunk_rows_for(matrix)):
        for_each_block(hi - lo, chunk.size, lambda a, b, chunk=chunk, lo=lo: work(chunk, a, b, lo))
        if progress is not None:
            progress(hi - lo)
    if isinstance(result.scores, SparseRows) and reweight and result.no_kept_mass.any():
        result = replace(result, scores=_with_kept_pairs(result.scores, result.no_kept_mass, keep))
    return result


def _with_kept_pairs(scores: SparseRows, rows: np.ndarray, keep: np.ndarray) -> SparseRows:
    """``scores`` with a pair for every kept class in ``rows`` (uniform rows: the dense result, as pairs).

    Such a row's own pairs already score ``1/K`` (kept) or 0 (excluded); the kept classes it had no
    pair for are appended, in class order, with the same ``1/K``.
    """
    kept_classes = np.flatnonzero(keep).astype(scores.indices.dtype)
    uniform = (keep / keep.sum()).astype(scores.dtype)[kept_classes[0]]
    counts = np.diff(scores.indptr)
    parts_idx, parts_val, new_counts = [], [], counts.copy()
    start = 0
    for row in np.flatnonzero(rows).tolist():
        a, b = int(scores.indptr[row]), int(scores.indptr[row + 1])
        missing = kept_classes[~np.isin(kept_classes, scores.indices[a:b])]
        parts_idx += [scores.indices[start:b], missing]
        parts_val += [scores.values[start:b], np.full(missing.size, uniform, dtype=scores.dtype)]
        new_counts[row] += missing.size
        start = b
    parts_idx.append(scores.indices[start:])
    parts_val.append(scores.values[start:])
    indptr = np.concatenate([[0], np.cumsum(new_counts)]).astype(scores.indptr.dtype)
    return SparseRows(indptr, np.concatenate(parts_idx), np.concatenate(parts_val), scores.n_classes)


def _mask_logits(
    chunk: np.ndarray, keep: np.ndarray, reweight: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Masked probabilities from logits, with the source argmax, its probability and the removed mass."""
    rows = np.arange(chunk.shape[0])
    source_class = chunk.argmax(axis=1)
    shift = chunk[rows, source_class][:, None]
    exp = np.exp(chunk - shift)  # every value in (0, 1]: no overflow
    total = exp.sum(axis=1, dtype=np.float64)
    exp[:, ~keep] = 0.0
    kept = exp.sum(axis=1, dtype=np.float64)
    removed = 1.0 - kept / total
    source_score = (1.0 / total).astype(chunk.dtype)
    if reweight:
        # Softmax over kept classes, shifted by their own maximum: exact even when the kept
        # classes' probabilities underflowed under the global shift.
        kept_logits = np.where(keep, chunk, -np.inf)
        exp = np.exp(kept_logits - kept_logits.max(axis=1, keepdims=True))
        exp /= exp.sum(axis=1, keepdims=True)
    else:
        exp /= total[:, None].astype(chunk.dtype)
    return exp, source_class, source_score, np.maximum(removed, 0.0)
