"""Top-k outputs: each row's ``(class, score)`` pairs, kept sparse and densified a chunk at a time.

Classifiers often keep only their best classes (SpeciesNet its top 5, iNaturalist's vision API
its top 10). A file of such rows is held in CSR form, a few bytes per pair; the tasks densify
one chunk of rows at a time (the missing classes score 0), so memory stays bounded whatever the
number of classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taxopost.errors import InputError


@dataclass(frozen=True)
class SparseRows:
    """Probability rows as ``(class, score)`` pairs in CSR form.

    Attributes
    ----------
    indptr : ndarray of shape (n_rows + 1,), int64
        Row ``i`` holds pairs ``indptr[i]:indptr[i + 1]``.
    indices : ndarray of shape (n_pairs,), int32
        The class of each pair, in ``0 .. n_classes - 1``; at most once per row.
    values : ndarray of shape (n_pairs,), float32
        The score of each pair.
    n_classes : int
    """

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    n_classes: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.indptr.size - 1, self.n_classes)

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    @property
    def itemsize(self) -> int:
        return self.values.dtype.itemsize

    def __len__(self) -> int:
        return self.indptr.size - 1

    def dense(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Rows ``lo:hi`` as a dense matrix of shape (hi - lo, n_classes); absent classes score 0."""
        hi = len(self) if hi is None else hi
        out = np.zeros((hi - lo, self.n_classes), dtype=self.values.dtype)
        a, b = int(self.indptr[lo]), int(self.indptr[hi])
        rows = np.repeat(np.arange(hi - lo), np.diff(self.indptr[lo : hi + 1]))
        out[rows, self.indices[a:b]] = self.values[a:b]
        return out

    def dense_into(self, out: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Rows ``lo:hi`` scattered into ``out[: hi - lo]``, which must be all zeros; returns that view.

        Reusing one buffer (and :meth:`clear` after it) spares a fresh 60 MB array per chunk,
        whose page faults cost more than the roll-up of its rows.
        """
        a, b = int(self.indptr[lo]), int(self.indptr[hi])
        rows = np.repeat(np.arange(hi - lo), np.diff(self.indptr[lo : hi + 1]))
        out[rows, self.indices[a:b]] = self.values[a:b]
        return out[: hi - lo]

    def clear(self, out: np.ndarray, lo: int, hi: int) -> None:
        """Zero what :meth:`dense_into` wrote for rows ``lo:hi``."""
        a, b = int(self.indptr[lo]), int(self.indptr[hi])
        rows = np.repeat(np.arange(hi - lo), np.diff(self.indptr[lo : hi + 1]))
        out[rows, self.indices[a:b]] = 0

    def pair_rows(self) -> np.ndarray:
        """The row of each pair, shape (n_pairs,)."""
        return np.repeat(np.arange(len(self)), np.diff(self.indptr))

    def with_values(self, values: np.ndarray) -> SparseRows:
        """The same pairs with other scores (e.g. after masking)."""
        return SparseRows(self.indptr, self.indices, values, self.n_classes)


def sparse_rows(
    indptr: object, indices: object, values: object, n_classes: int, *, field: str = "scores"
) -> SparseRows:
    """Check CSR arrays and return them as :class:`SparseRows`.

    Values are checked as probabilities by the task that uses them (a chunk at a time); here the
    structure: offsets that start at 0 and never decrease, classes inside the category map, and
    no class twice in one row. Errors name ``field[row, class]`` and carry the ``row``.
    """
    ptr = np.asarray(indptr, dtype=np.int64)
    idx = np.asarray(indices)
    vals = np.asarray(values)
    if ptr.ndim != 1 or ptr.size < 1 or ptr[0] != 0 or (np.diff(ptr) < 0).any() or ptr[-1] != idx.size:
        raise InputError(f"{field}.indptr", ptr.size, "row offsets must start at 0, never decrease and end at n_pairs")
    if idx.shape != vals.shape or idx.ndim != 1:
        raise InputError(field, (idx.shape, vals.shape), "one class per score expected")
    if not np.issubdtype(idx.dtype, np.integer):
        raise InputError(f"{field}.indices", str(idx.dtype), "class indices must be integers")
    if vals.dtype not in (np.float32, np.float64):
        vals = vals.astype(np.float64)
    rows = np.repeat(np.arange(ptr.size - 1), np.diff(ptr))
    outside = (idx < 0) | (idx >= n_classes)
    if outside.any():
        at = int(np.flatnonzero(outside)[0])
        raise InputError(
            f"{field}[{rows[at]}]", int(idx[at]), f"class outside the category map's {n_classes}", row=int(rows[at])
        )
    keys = rows * np.int64(n_classes) + idx
    order = np.argsort(keys, kind="stable")
    repeated = np.flatnonzero(np.diff(keys[order]) == 0)
    if repeated.size:
        at = int(order[repeated[0] + 1])
        raise InputError(
            f"{field}[{rows[at]}, {int(idx[at])}]",
            float(vals[at]),
            "a class appears twice in one row",
            row=int(rows[at]),
        )
    return SparseRows(ptr, idx.astype(np.int32), vals, int(n_classes))
