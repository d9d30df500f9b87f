"""Fixed-size row chunks: what keeps memory bounded whatever the input's size."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: Target size of one chunk of a score matrix. Temporaries (a softmax, a masked copy) are at
#: most a few chunks, so peak extra memory stays a small multiple of this.
CHUNK_BYTES = 64 * 1024 * 1024


def chunk_rows_for(matrix: np.ndarray, budget: int = CHUNK_BYTES) -> int:
    """Rows per chunk so that one chunk of ``matrix`` takes about ``budget`` bytes."""
    row_bytes = max(1, matrix.shape[1] * matrix.itemsize)
    return max(1, budget // row_bytes)


def iter_row_chunks(n_rows: int, chunk_rows: int) -> Iterator[tuple[int, int]]:
    """Yield ``(lo, hi)`` row ranges covering ``0 .. n_rows`` in steps of ``chunk_rows``."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    for lo in range(0, n_rows, chunk_rows):
        yield lo, min(lo + chunk_rows, n_rows)
