"""Score and logit vectors as bytes, one blob per classification.

A blob is either **dense**, ``n_classes`` float32 values, little-endian (``4 * n_classes`` bytes),
or **sparse**: the 4-byte tag ``SPv1``, then the ``k`` class indices (int32) and their ``k``
values (float32), in class order: ``4 + 8k`` bytes. A row is stored sparse only when that is
shorter than dense (``k < (n_classes - 1) / 2``), so the length alone tells the two apart. Both
hold the same float32 values; absent classes are exactly 0. Masking to a regional list keeps
few classes (the BCI checklist keeps 19 of the AMI model's 2,497): its outputs are stored sparse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DTYPE = np.dtype("<f4")
INDEX = np.dtype("<i4")
SPARSE_TAG = b"SPv1"


def rows_to_bytes(matrix: np.ndarray, *, sparse: bool = False) -> list[bytes]:
    """Each row of ``matrix`` as bytes: dense float32, or sparse where that is shorter and asked for."""
    packed = np.ascontiguousarray(matrix, dtype=DTYPE)
    n_classes = packed.shape[1]
    width = n_classes * DTYPE.itemsize
    if not sparse:
        data = packed.tobytes()
        return [data[i : i + width] for i in range(0, len(data), width)]
    rows, cols = np.nonzero(packed)
    counts = np.bincount(rows, minlength=packed.shape[0])
    ends = np.cumsum(counts)
    indices = cols.astype(INDEX).tobytes()
    values = packed[rows, cols].tobytes()
    blobs = []
    for i, (count, end) in enumerate(zip(counts.tolist(), ends.tolist(), strict=True)):
        if 4 + 8 * count < width:
            start = end - count
            blobs.append(SPARSE_TAG + indices[4 * start : 4 * end] + values[4 * start : 4 * end])
        else:
            blobs.append(packed[i].tobytes())
    return blobs


def stack(blobs: Sequence[bytes | memoryview], n_classes: int) -> np.ndarray:
    """Blobs as an ``(len(blobs), n_classes)`` float32 matrix: one step when all are dense."""
    parts = [bytes(b) if isinstance(b, memoryview) else b for b in blobs]
    width = n_classes * DTYPE.itemsize
    if all(len(part) == width for part in parts):
        data = b"".join(parts)
        return np.frombuffer(data, dtype=DTYPE).reshape(len(parts), n_classes).astype(np.float32, copy=False)
    out = np.zeros((len(parts), n_classes), dtype=np.float32)
    for i, part in enumerate(parts):
        if len(part) == width:
            out[i] = np.frombuffer(part, dtype=DTYPE)
            continue
        count = (len(part) - 4) // 8
        if not part.startswith(SPARSE_TAG) or 4 + 8 * count != len(part) or 4 + 8 * count >= width:
            raise ValueError(f"a stored vector is neither {n_classes} values nor a sparse vector ({len(part)} bytes)")
        indices = np.frombuffer(part, dtype=INDEX, count=count, offset=4)
        if count and (indices.min() < 0 or indices.max() >= n_classes):
            raise ValueError(f"a stored sparse vector names a class outside 0..{n_classes - 1}")
        out[i, indices] = np.frombuffer(part, dtype=DTYPE, count=count, offset=4 + 4 * count)
    return out
