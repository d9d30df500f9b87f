"""Score and logit vectors as bytes: float32, little-endian, one blob per classification."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DTYPE = np.dtype("<f4")


def rows_to_bytes(matrix: np.ndarray) -> list[bytes]:
    """Each row of ``matrix`` as float32 bytes."""
    packed = np.ascontiguousarray(matrix, dtype=DTYPE)
    width = packed.shape[1] * DTYPE.itemsize
    data = packed.tobytes()
    return [data[i : i + width] for i in range(0, len(data), width)]


def stack(blobs: Sequence[bytes | memoryview], n_classes: int) -> np.ndarray:
    """Blobs of equal length as an ``(len(blobs), n_classes)`` float32 matrix, in one step."""
    data = b"".join(bytes(b) if isinstance(b, memoryview) else b for b in blobs)
    expected = len(blobs) * n_classes * DTYPE.itemsize
    if len(data) != expected:
        raise ValueError(f"stored vectors do not have {n_classes} values each ({len(data)} bytes for {len(blobs)})")
    return np.frombuffer(data, dtype=DTYPE).reshape(len(blobs), n_classes).astype(np.float32, copy=False)
