"""Compiled inner loops of rank roll-up.

Why numba here: a rank's aggregation is a scatter of each row's classes into that rank's
taxa, followed by a threshold test that stops at the first accepted rank. As whole-array
operations that costs a temporary matrix per rank and every rank for every row; as one
compiled loop per row it is a single sweep that stops as soon as a rank is accepted, with
buffers the size of one rank's taxa. Sums are accumulated in float64.

The kernels are serial and release the GIL: the caller runs them on a block of rows right
after validating that block, while it is still in cache, and spreads blocks over threads.
Arrays with a per-rank layout are flattened with an offsets array (``*_off``).

Acceptance (the first rank whose candidate's aggregate is ``>=`` its threshold, compared in the
input's precision; no candidate never clears) is fused into the aggregation loop here, so a row
stops at its accepted rank. :func:`taxopost.core.rollup.apply_thresholds` applies the same rule
to precomputed candidates, vectorised, for threshold sweeps and calibration, where the
aggregates are computed once for many thresholds. The two forms are proven equal, field by
field, on random taxonomies and score matrices (ties and aggregates exactly at a threshold
included, float32 and float64) by
``tests/core/test_properties.py::test_candidates_then_thresholds_equal_rank_rollup``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _round(value: float, round32: bool) -> float:
    # Compare in the input's precision: 0.5 + 0.25 + 0.05 must clear a 0.8 threshold in float32.
    if round32:
        return np.float64(np.float32(value))
    return value


@njit(cache=True, nogil=True)
def lineage_rollup(
    scores,
    candidates,
    member_ptr,
    member_ptr_off,
    member_idx,
    member_idx_off,
    thresholds,
    round32,
    accepted_rank,
    accepted_group,
    evidence_score,
):
    """Lineage mode: at each rank, the candidate is fixed (the source's ancestor); sum its classes.

    ``candidates`` (n_rows, n_ranks) holds the candidate's group at each rank or -1. Writes the
    first accepted rank (or -1) and its group, and each evaluated rank's aggregate.
    """
    n_rows, n_ranks = candidates.shape
    for n in range(n_rows):
        row = scores[n]
        accepted_rank[n] = -1
        for r in range(n_ranks):
            group = candidates[n, r]
            if group < 0:
                continue
            lo = member_ptr[member_ptr_off[r] + group]
            hi = member_ptr[member_ptr_off[r] + group + 1]
            base = member_idx_off[r]
            total = 0.0
            for k in range(lo, hi):
                total += row[member_idx[base + k]]
            total = _round(total, round32)
            evidence_score[n, r] = total
            if total >= thresholds[r]:
                accepted_rank[n] = r
                accepted_group[n] = group
                break


@njit(cache=True, nogil=True)
def distribution_rollup(
    scores,
    argmax,
    identity_first,
    class_group,
    n_groups,
    member_ptr,
    member_ptr_off,
    member_idx,
    member_idx_off,
    thresholds,
    round32,
    accepted_rank,
    accepted_group,
    evidence_group,
    evidence_score,
):
    """Distribution mode: at each rank, the candidate is the argmax of all that rank's aggregates.

    ``class_group`` (n_ranks, n_classes) gives each class's group at each rank, or -1. When
    every class is its own rank-0 taxon (``identity_first``) the rank-0 aggregates are the
    scores themselves and the precomputed ``argmax`` is the candidate.

    Exact pruning: a row's mass sits on few classes. Sum only the classes scoring at least
    ``_HEAVY`` (partial aggregates ``P``) and bound the rest by their total ``E``; if the best
    partial aggregate beats the second by more than ``E``, no other taxon can catch up, so it is
    the argmax and only its own classes are summed exactly. Otherwise every class of the row is
    scattered into the rank's taxa. Both paths give the same argmax; ties (only possible on the
    full path) go to the lowest group index.
    """
    n_rows, n_classes = scores.shape
    n_ranks = n_groups.size
    widest = max(n_groups.max(), 1)
    full = np.empty(widest, dtype=np.float64)
    partial = np.zeros(widest, dtype=np.float64)
    touched = np.empty(n_classes, dtype=np.int64)
    heavy = np.empty(n_classes, dtype=np.int64)
    for n in range(n_rows):
        row = scores[n]
        accepted_rank[n] = -1
        n_heavy = -1  # the heavy classes are listed once per row, when first needed
        light = 0.0
        for r in range(n_ranks):
            if r == 0 and identity_first:
                best_group = argmax[n]
                best = _round(np.float64(row[best_group]), round32)
            else:
                if n_heavy < 0:
                    n_heavy = 0
                    for c in range(n_classes):
                        if row[c] >= _HEAVY:
                            heavy[n_heavy] = c
                            n_heavy += 1
                        else:
                            light += row[c]
                best_group = _pruned_argmax(row, heavy, n_heavy, light, class_group[r], partial, touched)
                if best_group >= 0:
                    base = member_idx_off[r]
                    lo = member_ptr[member_ptr_off[r] + best_group]
                    hi = member_ptr[member_ptr_off[r] + best_group + 1]
                    best = 0.0
                    for k in range(lo, hi):
                        best += row[member_idx[base + k]]
                    best = _round(best, round32)
                else:
                    full[: n_groups[r]] = 0.0
                    groups = class_group[r]
                    for c in range(n_classes):
                        g = groups[c]
                        if g >= 0:
                            full[g] += row[c]
                    best_group, best = _argmax(full, n_groups[r], round32)
            evidence_group[n, r] = best_group
            evidence_score[n, r] = best
            if best_group >= 0 and best >= thresholds[r]:
                accepted_rank[n] = r
                accepted_group[n] = best_group
                break


#: Classes scoring at least this are summed individually by the pruned argmax.
_HEAVY = 1e-4
#: Safety margin for float64 rounding in the pruning bound.
_MARGIN = 1e-9


@njit(cache=True, nogil=True)
def _pruned_argmax(row, heavy, n_heavy, light, groups, partial, touched):
    """The argmax group if the heavy classes alone decide it, else -1. Leaves ``partial`` zeroed."""
    n_touched = 0
    for k in range(n_heavy):
        c = heavy[k]
        g = groups[c]
        if g >= 0:
            if partial[g] == 0.0:
                touched[n_touched] = g
                n_touched += 1
            partial[g] += row[c]
    first = -1.0
    second = 0.0
    first_group = -1
    for k in range(n_touched):
        g = touched[k]
        value = partial[g]
        if value > first:
            second = max(second, first)
            first = value
            first_group = g
        elif value > second:
            second = value
        partial[g] = 0.0
    if first_group >= 0 and first - second > light + _MARGIN:
        return first_group
    return -1


@njit(cache=True, nogil=True)
def _argmax(values, size, round32):
    if size == 0:  # no taxon of this rank under any class: no candidate, no aggregate (NaN)
        return -1, np.nan
    best_group = 0
    best = values[0]
    for g in range(1, size):
        if values[g] > best:
            best = values[g]
            best_group = g
    return best_group, _round(best, round32)


# -- occurrence consensus ----------------------------------------------------------------------


#: Rows added in the partial buffer's precision before they are flushed into float64: bounds
#: the rounding error of a float32 mean at about 64 float32 ulps, whatever the group's size.
_FLUSH_ROWS = 64


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def segment_product(values, rows, bounds, floor, partial_below, rows32, out, mass, row_sum, row_negative):
    """The geometric consensus of segments whose rows all weigh the same, without a logarithm.

    Why: with equal weights the normalised product ``prod_i max(p_i, floor)`` is the geometric
    method itself; the general path (:func:`segment_combine` over ``log(max(p, floor))``, then
    ``exp``) spends most of its time in the logarithm of every input value and the exponential
    of every combined one: 15 to 37 times one pass over the matrix. Every factor is at least
    ``floor``, so after ``k`` rows no class is below ``floor ** k``: the caller gives this kernel
    only segments short enough for that to stay in float64's normal range
    (``consensus._product_rows``), where a class that underflowed to 0 could never win back.
    A segment of at most ``rows32`` rows (float32 input: the rows that float32's range holds;
    0 otherwise) runs in float32: twice the lanes of float64, and no conversion of each value.
    The precision is the segment's own, so chunking never changes a result.

    In a segment with a partial row (summing below ``partial_below``), every row's missing mass
    ``max(1 - sum, floor)`` combines as the "none of these" class, as in the general path; a
    segment without a partial row has no such class (mass 1). Each
    row's sum and count of negative values come out of the same sweep (the door's checks), in
    the segment's precision. Shapes as :func:`segment_combine`.
    """
    n_classes = values.shape[1]
    acc32 = np.empty(n_classes, dtype=np.float32)
    acc64 = np.empty(n_classes, dtype=np.float64)
    floor32 = np.float32(floor)
    for g in range(bounds.size - 1):
        lo, hi = bounds[g], bounds[g + 1]
        if hi - lo <= rows32:
            mass[g] = _product(values, rows, lo, hi, floor32, partial_below, acc32, out[g], row_sum, row_negative)
        else:
            mass[g] = _product(values, rows, lo, hi, floor, partial_below, acc64, out[g], row_sum, row_negative)


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _product(values, rows, lo, hi, floor, partial_below, acc, out, row_sum, row_negative):
    """One segment of :func:`segment_product` in the precision of ``acc`` (and ``floor``); returns its mass."""
    n_classes = values.shape[1]
    zero = acc.dtype.type(0)  # in acc's precision: no promotion in the loop
    one = acc.dtype.type(1)
    acc[:] = 1.0
    rest = 1.0
    any_partial = False
    for k in range(lo, hi):
        row = values[rows[k]]
        total = zero
        negative = zero
        for c in range(n_classes):
            v = row[c]
            total += v
            negative += one if v < zero else zero
            acc[c] *= v if v > floor else floor
        row_sum[k] = total
        row_negative[k] = negative
        any_partial = any_partial or total < partial_below
        rest *= max(1.0 - total, floor)  # a full row's missing mass (0, or a rounding's few ulps) floored
    if not any_partial:
        rest = 0.0
    total64 = rest
    for c in range(n_classes):
        total64 += acc[c]
    for c in range(n_classes):
        out[c] = acc[c] / total64
    return 1.0 - rest / total64


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def segment_combine(values, rows, bounds, weights, divisor, geometric, rest, partial, out, mass, row_sum, row_negative):
    """Combine each segment of consecutive rows into one row of ``out``, with its mass.

    Why compiled: ``np.add.reduceat(values, starts, axis=0)`` is the whole-array form of the
    weighted segment sum, but it walks a C-ordered matrix column by column and measured 30 to 60
    times slower than one pass over the matrix (100,000 x 2,497 float32); whole-array steps
    around it (a float64 temporary per block) cost as much again. The winner is left to numpy's
    argmax, which vectorises where a compiled loop over classes that may win does not.
    Here each segment is accumulated row by row, and each row's sum and count of negative values
    (the door's checks) come out of the same sweep. ``reassoc`` lets those sums vectorise; it
    keeps NaN and inf semantics, so a bad value still shows in the row's sum. (A running minimum
    instead of the count stops the loop vectorising: 3x slower.)

    Rows are added into ``partial`` (float32 for float32 probabilities: twice the lanes of
    float64, which made the sweep 2x slower) and flushed into a float64 buffer every
    ``_FLUSH_ROWS`` rows and at the segment's end.

    Parameters
    ----------
    values : (n_values, n_classes)
        Probabilities (mean) or floored log-probabilities (geometric).
    rows : (n_rows,) int64
        The rows of ``values`` in segment order: reading through it costs far less than a
        sorted copy of the matrix.
    bounds : (n_segments + 1,) int64
        Offsets into ``rows`` of the segments.
    weights : (n_rows,), the dtype of ``partial``, in segment order
        Already relative within each segment (largest 1 for the mean, mean 1 for the geometric).
    divisor : (n_segments,) float64
        The mean's sums are divided by it (the segment's total weight) once summed: scaling each
        weight to sum 1 first rounded every product, so that exact ties (``3 x 0.25`` against
        ``0.125 + 0.5 + 0.125``) came apart by an ulp and the winner depended on the rows' order.
        Unused by the geometric method.
    geometric : bool
        Normalise ``exp(sum)`` over the classes plus the "none of these" logit ``rest[g]``
        (``-inf`` when no row of the segment left mass missing).
    partial : (n_classes,) float32 or float64
        Scratch buffer; its dtype is the precision of the inner sums.
    out : (n_segments, n_classes), the input's dtype
    mass : (n_segments,) float64
    row_sum, row_negative : (n_rows,) float64, in segment order
        Each row's sum and number of negative values (meaningful for probabilities only).
    """
    n_classes = values.shape[1]
    acc = np.empty(n_classes, dtype=np.float64)
    partial[:] = 0.0
    zero, one = partial[0], partial[0] + partial.dtype.type(1)  # in the inner sums' precision: no promotion
    for g in range(bounds.size - 1):
        # A short segment of the mean is written from its partial sums: no float64 pass.
        short = not geometric and bounds[g + 1] - bounds[g] <= _FLUSH_ROWS
        partial[:] = 0.0
        if not short:
            acc[:] = 0.0
        for k in range(bounds[g], bounds[g + 1]):
            row = values[rows[k]]
            w = weights[k]
            total = zero
            negative = zero
            for c in range(n_classes):
                v = row[c]
                partial[c] += w * v
                total += v
                negative += one if v < zero else zero
            row_sum[k] = total
            row_negative[k] = negative
            if not short and ((k - bounds[g]) % _FLUSH_ROWS == _FLUSH_ROWS - 1 or k == bounds[g + 1] - 1):
                for c in range(n_classes):
                    acc[c] += partial[c]
                partial[:] = 0.0
        if short:
            d = partial.dtype.type(divisor[g])
            total64 = 0.0
            for c in range(n_classes):
                value = partial[c] / d
                out[g, c] = value
                total64 += value
            mass[g] = total64
            continue
        if geometric:
            top = rest[g]
            for c in range(n_classes):
                top = max(top, acc[c])
            total64 = 0.0
            for c in range(n_classes):
                acc[c] = np.exp(acc[c] - top)
                total64 += acc[c]
            missing = np.exp(rest[g] - top)
            total64 += missing
            for c in range(n_classes):
                acc[c] /= total64
            mass[g] = 1.0 - missing / total64
        else:
            total64 = 0.0
            for c in range(n_classes):
                acc[c] /= divisor[g]
                total64 += acc[c]
            mass[g] = total64
        for c in range(n_classes):
            out[g, c] = acc[c]
