"""Occurrence consensus: combine the score vectors of each group of rows (an occurrence) into one.

An occurrence is one individual seen in several detections; each detection has its own vector.
Deciding per detection and keeping the best score lets a rolled-up genus from one frame beat a
species from another, and five frames that each say "0.55" never add up. Combining first gives
one distribution per occurrence, which the other rules (roll-up, masking) then treat like any row.

Methods (weights ``w_i`` are each group's relative say of its rows, see :func:`consensus`):

- ``mean``: ``sum_i w_i p_i / sum_i w_i``. Robust when frames share their errors (the same
  individual, pose and light), which real tracks do.
- ``geometric``: the normalised product ``prod_i max(p_i, floor) ** w_i`` (summed
  log-probabilities), weights scaled to average 1 in each group. It treats frames as
  independent evidence; the floor keeps one near-zero frame from vetoing a class.

Partial rows (top-k, or masked without reweighting: a row summing to ``m < 1``, the missing
``1 - m`` belonging to no class) keep their missing mass missing: ``mean`` averages it like any
class, and ``geometric`` combines it as one more class, "none of these", dropped after the
normalisation. A group of one row is that row, whatever the method.

The combination is one pass: a segment reduction over rows sorted by group (no copy when they
already are), with the door's checks fused in, block by block over a thread pool. With equal
weights the geometric method multiplies instead of summing logarithms (the same result, without
a logarithm of every value), for tracks short enough that the product cannot leave float64's
range; float32 input on tracks of up to 7 rows (at the default floor) multiplies in float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from taxopost.core._validation import SUM_TOLERANCE, as_rows, check_logits, check_probabilities, for_each_block
from taxopost.core.category_map import CategoryMap
from taxopost.core.chunks import chunk_rows_for
from taxopost.core.sparse import SparseRows
from taxopost.core.vectors import softmax
from taxopost.errors import InputError

Method = Literal["mean", "geometric"]
METHODS: tuple[str, ...] = ("mean", "geometric")
#: Lowest probability a class counts with in the geometric method: one frame at 0 costs that class
#: ``log(1e-4)`` (about -9.2 nats), a strong vote against it but not a veto.
DEFAULT_FLOOR = 1e-4
_NO_REST = np.zeros(0)  # the mean method has no "none of these" logit
_NO_DIVISOR = np.zeros(0)  # nor does the geometric divide its sums
#: Nats kept between the smallest product the kernel may reach and the end of its dtype's normal
#: range (e**-708.4 for float64, e**-87.3 for float32).
_PRODUCT_MARGIN = 8.0


@dataclass(frozen=True)
class ConsensusResult:
    """The combined distribution of every group.

    Attributes
    ----------
    group_ids : ndarray of shape (n_groups,), int64
        The distinct group ids, ascending; row ``g`` of every per-group array is ``group_ids[g]``.
    row_group : ndarray of shape (n_rows,), intp
        Each input row's group, as an index into ``group_ids``.
    sizes : ndarray of shape (n_groups,), int64
        Rows per group.
    scores : ndarray of shape (n_groups, n_classes), the input's dtype
        The combined probabilities; a group's row sums to ``mass``.
    mass : ndarray of shape (n_groups,), float64
        Total probability of each combined row: 1 for full rows, less where rows were partial.
    winner : ndarray of shape (n_groups,), intp
        The most probable class that has a taxon (the first on ties).
    score : ndarray of shape (n_groups,), the input's dtype
        The winner's combined probability.
    method : str
    """

    group_ids: np.ndarray
    row_group: np.ndarray
    sizes: np.ndarray
    scores: np.ndarray
    mass: np.ndarray
    winner: np.ndarray
    score: np.ndarray
    method: str

    def __len__(self) -> int:
        return self.group_ids.size


def consensus(
    values: np.ndarray | SparseRows,
    groups: np.ndarray,
    category_map: CategoryMap,
    *,
    method: Method = "mean",
    weights: np.ndarray | None = None,
    logits: bool = False,
    floor: float = DEFAULT_FLOOR,
    chunk_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ConsensusResult:
    """Combine the rows of each group into one distribution.

    Parameters
    ----------
    values : array-like of shape (n_rows, n_classes), or SparseRows
        Probabilities (a row may sum to less than 1: top-k or partial; its missing mass stays
        missing), or logits with ``logits=True`` (softmaxed first). float32 stays float32.
        Top-k pairs (:class:`~taxopost.core.sparse.SparseRows`) are densified first: a
        combined row holds every class any of its rows scored, so the result is dense anyway.
    groups : array-like of shape (n_rows,), int
        Each row's group id (an occurrence), ``>= 0``; rows of a group need not be adjacent.
    category_map : CategoryMap
        Fixes ``n_classes``; classes without a taxon never win.
    method : {"mean", "geometric"}, default "mean"
    weights : array-like of shape (n_rows,), optional
        Each row's relative say in its group (detection area, detector confidence): finite and
        ``>= 0``. Only ratios within a group matter; a group whose weights are all 0 is combined
        with equal weights. Default: equal weights.
    floor : float in (0, 1), default 1e-4
        Geometric method only: the lowest probability a class counts with.
    chunk_rows : int, optional
        Rows combined between two ``progress`` calls (whole groups; default about 64 MiB).
    progress : callable, optional
        Called with the number of rows finished.

    Returns
    -------
    ConsensusResult

    Raises
    ------
    InputError
        ``groups`` of the wrong length, negative or not integers; ``weights`` of the wrong length,
        negative or not finite; an unknown method; a floor outside (0, 1); a bad score or logit
        (its ``row`` is the input row).
    """
    field = "logits" if logits else "scores"
    rows = as_rows(values, category_map.n_classes, field=field, logits=logits)
    matrix = rows.dense() if isinstance(rows, SparseRows) else rows
    n = matrix.shape[0]
    if method not in METHODS:
        raise InputError("method", method, f"must be one of {', '.join(METHODS)}")
    if isinstance(floor, bool) or not (isinstance(floor, int | float | np.integer | np.floating) and 0.0 < floor < 1.0):
        raise InputError("floor", floor, "must be in the open interval (0, 1)")
    ids = check_groups(groups, n)
    w = np.ones(n) if weights is None else check_weights(weights, n)
    return _combine(matrix, ids, w, category_map, method, logits, float(floor), chunk_rows, progress)


def check_groups(groups: object, n_rows: int) -> np.ndarray:
    """``groups`` as an int64 vector of ``n_rows`` ids ``>= 0``, or an InputError naming the first bad one."""
    array = np.asarray(groups)
    if array.ndim != 1 or array.size != n_rows:
        size = array.size if array.ndim == 1 else array.shape
        raise InputError("groups", size, f"must hold one group id per row: {n_rows} ids")
    if array.dtype.kind == "f":
        whole = np.isfinite(array) & (array == np.round(array))
        if not whole.all():
            row = int(np.flatnonzero(~whole)[0])
            raise InputError(f"groups[{row}]", float(array[row]), "group ids must be integers", row=row)
    elif array.dtype.kind not in "iu" and n_rows:
        raise InputError("groups", str(array.dtype), "group ids must be integers")
    if array.dtype.kind == "u" and n_rows and array.max() > np.iinfo(np.int64).max:  # would wrap to < 0
        row = int(np.argmax(array > np.iinfo(np.int64).max))
        raise InputError(f"groups[{row}]", int(array[row]), "group ids must be below 2**63", row=row)
    ids = array.astype(np.int64)
    if n_rows and ids.min() < 0:
        row = int(np.flatnonzero(ids < 0)[0])
        raise InputError(f"groups[{row}]", int(ids[row]), "group ids must be >= 0", row=row)
    return ids


def check_weights(weights: object, n_rows: int) -> np.ndarray:
    """``weights`` as a float64 vector of ``n_rows`` finite values ``>= 0``."""
    try:
        array = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("weights", type(weights).__name__, "must be numbers, one per row") from None
    if array.ndim != 1 or array.size != n_rows:
        raise InputError("weights", array.shape, f"must hold one weight per row: {n_rows} values")
    bad = ~np.isfinite(array) | (array < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"weights[{row}]", float(array[row]), "weights must be finite and >= 0", row=row)
    return array


def _combine(
    matrix: np.ndarray,
    ids: np.ndarray,
    weights: np.ndarray,
    category_map: CategoryMap,
    method: str,
    logits: bool,
    floor: float,
    chunk_rows: int | None,
    progress: Callable[[int], None] | None,
) -> ConsensusResult:
    from taxopost.core import _kernels  # numba loads on first use, not on import

    n, n_classes = matrix.shape
    dtype = matrix.dtype
    ordered = bool(n < 2 or (ids[1:] >= ids[:-1]).all())
    order = None if ordered else np.argsort(ids, kind="stable")
    sorted_ids = ids if order is None else ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]) if n else np.zeros(0, np.intp)
    bounds = np.r_[starts, n].astype(np.int64)
    sizes = np.diff(bounds)
    group_ids = sorted_ids[starts]
    row_group = np.empty(n, dtype=np.intp)
    row_group[slice(None) if order is None else order] = np.repeat(np.arange(starts.size), sizes)
    w = weights if order is None else weights[order]
    w, divisor = _relative_weights(w, starts, sizes, method)
    w_in = w.astype(matrix.dtype)  # the mean's inner sums run in the input's precision (see the kernel)

    n_groups = starts.size
    scores = np.empty((n_groups, n_classes), dtype=dtype)
    mass = np.empty(n_groups, dtype=np.float64)
    winner = np.empty(n_groups, dtype=np.int64)
    resolved = category_map.resolved
    all_resolved = bool(resolved.all())
    field = "logits" if logits else "scores"
    geometric = method == "geometric"
    product_rows = _product_rows(floor, np.float64)
    # float32 input on short tracks: the product runs in float32 (its range holds fewer rows).
    product_rows32 = _product_rows(floor, np.float32) if dtype == np.float32 else 0

    # Equal weights (the default): the geometric method is a plain product, no logarithm, for
    # tracks short enough that no class can fall out of float64's range behind the leader. Decided
    # per track, so that how tracks fall into blocks never changes a result; a block's tracks of
    # each path are combined together, wherever they lie in it.
    equal = np.logical_and.reduceat(w == 1.0, starts) if n else np.zeros(0, dtype=bool)
    by_product = geometric & (sizes <= product_rows) & equal

    def work(ga: int, gb: int) -> None:
        """Combine groups ``ga:gb``: each path's tracks of the block together (at most two calls)."""
        if not geometric:
            combine(slice(ga, gb), product=False)
            return
        flags = by_product[ga:gb]
        if flags.all() or not flags.any():
            combine(slice(ga, gb), product=bool(flags[0]))
            return
        for chosen in (True, False):
            combine(ga + np.flatnonzero(flags == chosen), product=chosen)

    def combine(groups: slice | np.ndarray, *, product: bool) -> None:
        """Combine ``groups`` (a range of them, or ascending indices): their rows in sorted order."""
        contiguous = isinstance(groups, slice)
        if contiguous:
            r0, r1 = int(bounds[groups.start]), int(bounds[groups.stop])
            pos = np.arange(r0, r1)
            local = bounds[groups.start : groups.stop + 1] - r0
            out, out_mass = scores[groups], mass[groups]  # views: the kernels write in place
        else:
            counts = sizes[groups]
            local = np.r_[0, np.cumsum(counts)]
            pos = np.repeat(bounds[groups] - local[:-1], counts) + np.arange(local[-1])
            out, out_mass = np.empty((groups.size, n_classes), dtype=dtype), np.empty(groups.size)
        rows = pos if order is None else order[pos]
        sums, negatives = np.empty(pos.size), np.empty(pos.size)
        if logits or (geometric and not product):  # softmax, or the logs of the general path: a copy
            block = matrix[r0:r1] if contiguous and order is None else matrix[rows]  # a view where it can
            try:
                if logits:
                    check_logits(block, field=field)
                    block = softmax(block)
                if not product:
                    sums[:] = check_probabilities(block, field=field).sums
            except InputError as exc:  # name the input row, not the block's
                _raise_for_row(matrix, int(rows[exc.row]), field, logits)
                raise
        source, at = (block, np.arange(pos.size)) if logits else (matrix, rows)
        if product:
            _kernels.segment_product(
                source, at, local, floor, 1.0 - SUM_TOLERANCE, product_rows32, out, out_mass, sums, negatives
            )
        elif geometric:
            partial = sums < 1.0 - SUM_TOLERANCE
            rest_rows = np.log(np.maximum(1.0 - sums, floor))  # a full row's (0, or a few ulps) floored
            rest = np.add.reduceat(w[pos] * rest_rows, local[:-1])
            rest[np.add.reduceat(partial, local[:-1]) == 0] = -np.inf  # no row left mass missing
            logs = np.log(np.maximum(block, dtype.type(floor)))
            _kernels.segment_combine(
                logs, np.arange(pos.size), local, w[pos], _NO_DIVISOR, True, rest, np.empty(n_classes), out,
                out_mass, negatives, negatives,
            )  # fmt: skip
        else:
            _kernels.segment_combine(
                source, at, local, w_in[pos], divisor[groups], False, _NO_REST, np.empty(n_classes, dtype=dtype),
                out, out_mass, sums, negatives,
            )  # fmt: skip
        if product or not geometric:  # the door's checks came out of the sweep
            bad = ~np.isfinite(sums) | (negatives > 0) | (sums > 1.0 + SUM_TOLERANCE)
            if bad.any():
                _raise_for_row(matrix, int(rows[np.flatnonzero(bad)].min()), field, logits)
        single = np.flatnonzero(np.diff(local) == 1)
        if single.size:  # a group of one row is that row
            out[single] = block[local[single]] if logits else matrix[rows[local[single]]]
            out_mass[single] = sums[local[single]]
        if not contiguous:
            scores[groups], mass[groups] = out, out_mass
        winner[groups] = (out if all_resolved else np.where(resolved, out, -1)).argmax(axis=1)

    rows_per_chunk = chunk_rows or chunk_rows_for(matrix)
    ga = 0
    while ga < n_groups:  # whole groups per chunk, about rows_per_chunk rows
        gb = int(np.searchsorted(bounds, bounds[ga] + rows_per_chunk, side="right")) - 1
        gb = min(max(gb, ga + 1), n_groups)
        done = int(bounds[gb] - bounds[ga])
        for_each_block(gb - ga, done * n_classes, lambda a, b, ga=ga: work(ga + a, ga + b))
        if progress is not None:
            progress(done)
        ga = gb
    score = scores[np.arange(n_groups), winner]
    return ConsensusResult(group_ids, row_group, sizes, scores, mass, winner.astype(np.intp), score, method)


def _product_rows(floor: float, dtype: type[np.floating]) -> int:
    """The longest track the product kernel combines exactly in ``dtype``.

    Every factor of the product is at least ``floor``, so after ``k`` rows no class (the "none of
    these" one included) is below ``floor ** k``, which must stay inside the dtype's normal range
    (about ``1e-308`` for float64, ``1e-38`` for float32): a class that underflowed to 0 could
    never win back, where the sum of logarithms keeps it. At the default floor: 75 rows in
    float64, 7 in float32; longer tracks take float64, then the logarithms.
    """
    log_range = -math.log(float(np.finfo(dtype).tiny)) - _PRODUCT_MARGIN
    return max(0, int(log_range / -math.log(floor)) - 1)


def _relative_weights(
    w: np.ndarray, starts: np.ndarray, sizes: np.ndarray, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Weights per group, and each group's divisor: the mean's weights scaled to a largest of 1
    (its sums are divided by their total afterwards: equal weights stay exactly 1), the geometric's
    to average 1 (divisor unused); a group whose weights are all 0 weighs its rows equally."""
    if not starts.size:
        return w.astype(np.float64), np.zeros(0)
    # Divided by the group's largest first: a sum of huge weights would overflow to inf and
    # scale every weight of the group to 0.
    largest = np.maximum.reduceat(w, starts)
    w = w / np.repeat(np.where(largest > 0, largest, 1.0), sizes)
    total = np.add.reduceat(w, starts)
    zero = total <= 0
    if zero.any():
        w = np.where(np.repeat(zero, sizes), 1.0, w)
        total = np.where(zero, sizes, total)
    if method == "mean":
        return w, total
    return w * np.repeat(sizes / total, sizes), total


def _raise_for_row(matrix: np.ndarray, row: int, field: str, logits: bool) -> None:
    """Re-check one input row, so that the error names it as the caller numbered it."""
    one = matrix[row : row + 1]
    if logits:
        check_logits(one, field=field, row_offset=row)
        one = softmax(one)
    check_probabilities(one, field=field, row_offset=row)
