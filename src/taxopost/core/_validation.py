"""Checks at the door for score and logit matrices, fused with the per-row statistics the
tasks need anyway (sum, minimum, maximum, argmax), so validating costs no extra pass.
A probability row is valid when it sums to at most 1: a partial row (top-k, or masked without
reweighting) leaves the missing mass to no class.

Rows are processed in small blocks that stay in cache while several reductions run over
them; :func:`for_each_block` spreads blocks over threads (numpy and the compiled kernels
release the GIL). The checks themselves are serial: they run inside those blocks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from taxopost.core.chunks import iter_row_chunks
from taxopost.core.sparse import SparseRows
from taxopost.errors import InputError

#: Probabilities must sum to 1 within this absolute tolerance (float32 softmax outputs of a
#: few thousand classes sum to 1 within about 1e-5; rounding each score to 6 decimals keeps
#: 2,500 classes well inside it).
SUM_TOLERANCE = 1e-3
#: Rows per block: 256 rows of 2,500 float32 classes (2.5 MB) stay in a core's cache.
_BLOCK_ROWS = 256
#: A row summing to about 100 holds percentages (a top-k in percent sums to less than 100).
PERCENT_SUMS = (50.0, 100.0 + 100 * SUM_TOLERANCE)
#: Below this many values the thread pool costs more than it saves.
_PARALLEL_MIN_VALUES = 1 << 20
_THREAD_PREFIX = "taxopost-rows"
#: The one buffer sparse rows are densified into, chunk after chunk: 840 rows of 2,497 float32 classes.
SPARSE_BUFFER_BYTES = 8 * 1024 * 1024


def as_matrix(values: object, n_classes: int, *, field: str) -> np.ndarray:
    """Return ``values`` as a C-contiguous float32 or float64 matrix of ``n_classes`` columns.

    float32 and float64 are kept as they are (no copy when already contiguous); other numeric
    types become float64.
    """
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise InputError(field, type(values).__name__, f"not a numeric matrix ({exc})") from None
    if array.ndim != 2:
        raise InputError(field, array.shape, "must be a matrix of shape (n_rows, n_classes)")
    if array.shape[1] != n_classes:
        raise InputError(
            field,
            array.shape[1],
            f"vectors have {array.shape[1]} values but the category map has {n_classes} classes",
        )
    if array.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise InputError(field, str(array.dtype), "must hold numbers")
        array = array.astype(np.float64)
    return np.ascontiguousarray(array)


def as_rows(values: object, n_classes: int, *, field: str, logits: bool = False) -> np.ndarray | SparseRows:
    """:func:`as_matrix`, or sparse rows as they are (their shape checked): what the tasks accept.

    Sparse rows are top-k probabilities: as ``logits`` they are refused.
    """
    if isinstance(values, SparseRows):
        if logits:
            raise InputError(field, "sparse rows", "top-k pairs are probabilities; logits must be full vectors")
        if values.n_classes != n_classes:
            raise InputError(
                field, values.n_classes, f"rows have {values.n_classes} classes but the category map has {n_classes}"
            )
        return values
    return as_matrix(values, n_classes, field=field)


def dense_chunks(rows: np.ndarray | SparseRows, chunk_rows: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(lo, hi, rows[lo:hi])`` for consecutive chunks, dense: views of a matrix, or sparse rows
    densified into one reused buffer (valid until the next chunk is asked for)."""
    n = rows.shape[0]
    if not isinstance(rows, SparseRows):
        for lo, hi in iter_row_chunks(n, chunk_rows):
            yield lo, hi, rows[lo:hi]
        return
    chunk_rows = min(chunk_rows, max(1, SPARSE_BUFFER_BYTES // (rows.n_classes * rows.itemsize)))
    buffer = np.zeros((min(chunk_rows, n), rows.n_classes), dtype=rows.dtype)
    for lo, hi in iter_row_chunks(n, chunk_rows):
        yield lo, hi, rows.dense_into(buffer, lo, hi)
        rows.clear(buffer, lo, hi)


@dataclass(frozen=True)
class RowStats:
    """Per-row statistics of a block of rows; all arrays of shape (n_rows,)."""

    sums: np.ndarray
    mins: np.ndarray
    maxs: np.ndarray
    argmax: np.ndarray


def row_stats(x: np.ndarray) -> RowStats:
    """Sum, min, max and argmax of each row of a C-contiguous matrix, in one cached sweep."""
    n = x.shape[0]
    sums = np.empty(n, dtype=x.dtype)
    mins = np.empty(n, dtype=x.dtype)
    argmax = np.empty(n, dtype=np.intp)

    for start in range(0, n, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n)
        block = x[start:stop]
        np.sum(block, axis=1, out=sums[start:stop])
        np.min(block, axis=1, out=mins[start:stop])
        np.argmax(block, axis=1, out=argmax[start:stop])
    maxs = x[np.arange(n), argmax]
    return RowStats(sums, mins, maxs, argmax)


def check_probabilities(x: np.ndarray, *, field: str, row_offset: int = 0) -> RowStats:
    """Validate probability rows (finite, >= 0, summing to at most 1) and return their stats.

    A row may sum to less than 1: a top-k output, or scores masked without reweighting. The
    missing mass belongs to no class, so every aggregate over such a row is a lower bound.
    """
    stats = row_stats(x)
    bad = ~np.isfinite(stats.sums)  # a NaN or inf anywhere makes its row's sum non-finite
    if bad.any():
        _raise_nonfinite(x, bad, field, row_offset)
    if (stats.mins < 0).any():
        row = int(np.flatnonzero(stats.mins < 0)[0])
        col = int(np.argmin(x[row]))
        raise InputError(
            f"{field}[{row + row_offset}, {col}]",
            float(x[row, col]),
            "probabilities must be >= 0 (logits? use --logits)",
            row=row + row_offset,
        )
    off = stats.sums > 1.0 + SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        total = float(stats.sums[row])
        raise InputError(
            f"{field}[{row + row_offset}]",
            f"sum={total:.6g}",
            f"probabilities must sum to at most 1 (+{SUM_TOLERANCE:g}) ({_hint(total)})",
            row=row + row_offset,
        )
    return stats


def _hint(total: float) -> str:
    """What a row sum above 1 most likely means."""
    if PERCENT_SUMS[0] <= total <= PERCENT_SUMS[1]:
        return "scores in percent? divide them by 100"
    return "logits? use --logits"


def check_logits(x: np.ndarray, *, field: str, row_offset: int = 0) -> None:
    """Validate logit rows: every value finite."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is reported below, not warned about
        sums = x.sum(axis=1)
    bad = ~np.isfinite(sums)
    if bad.any():
        _raise_nonfinite(x, bad, field, row_offset)


def _raise_nonfinite(x: np.ndarray, bad_rows: np.ndarray, field: str, row_offset: int) -> None:
    for row in np.flatnonzero(bad_rows):
        cols = np.flatnonzero(~np.isfinite(x[row]))
        if cols.size:
            col = int(cols[0])
            raise InputError(
                f"{field}[{row + row_offset}, {col}]",
                float(x[row, col]),
                "values must be finite",
                row=int(row) + row_offset,
            )
    row = int(np.flatnonzero(bad_rows)[0])
    raise InputError(
        f"{field}[{row + row_offset}]", "overflow", "the row's values are too large to add up", row=row + row_offset
    )


def for_each_block(n_rows: int, n_values: int, work: Callable[[int, int], None]) -> None:
    """Call ``work(lo, hi)`` on consecutive blocks of rows, spread over the thread pool.

    Each thread walks its own range of blocks in order and stops at its first error; the error
    of the earliest failing block is raised, so messages name the first bad row as a serial
    sweep would. ``work`` must release the GIL to gain from threads (numpy and the kernels do).
    """

    def sweep(lo: int, hi: int) -> tuple[int, Exception] | None:
        for start in range(lo, hi, _BLOCK_ROWS):
            try:
                work(start, min(start + _BLOCK_ROWS, hi))
            except Exception as exc:  # re-raised below, in row order
                return start, exc
        return None

    nested = threading.current_thread().name.startswith(_THREAD_PREFIX)  # never wait on our own pool
    workers = _worker_count() if n_values >= _PARALLEL_MIN_VALUES and not nested else 1
    if workers == 1:
        failures = [sweep(0, n_rows)]
    else:
        bounds = np.linspace(0, n_rows, workers + 1).astype(int) // _BLOCK_ROWS * _BLOCK_ROWS
        bounds[-1] = n_rows
        failures = list(_pool().map(lambda i: sweep(int(bounds[i]), int(bounds[i + 1])), range(workers)))
    failed = [failure for failure in failures if failure is not None]
    if failed:
        raise min(failed, key=lambda failure: failure[0])[1]


@lru_cache(maxsize=1)
def _worker_count() -> int:
    return max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8))


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_worker_count(), thread_name_prefix=_THREAD_PREFIX)
