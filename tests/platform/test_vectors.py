"""Stored vectors: dense float32 blobs, or sparse ones where a row is mostly zeros; both exact."""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.observations.vectors import SPARSE_TAG, rows_to_bytes, stack


def test_sparse_blobs_round_trip_exactly_and_only_where_shorter():
    rng = np.random.default_rng(3)
    matrix = rng.random((50, 40)).astype(np.float32)
    matrix[:25, 5:] = 0  # 5 non-zeros: stored sparse
    matrix[25:30] = 0  # no mass at all: sparse, 4 bytes
    blobs = rows_to_bytes(matrix, sparse=True)
    assert all(blob.startswith(SPARSE_TAG) and len(blob) == 4 + 8 * 5 for blob in blobs[:25])
    assert all(blob == SPARSE_TAG for blob in blobs[25:30])
    assert all(len(blob) == 40 * 4 for blob in blobs[30:])  # dense rows stay dense
    np.testing.assert_array_equal(stack(blobs, 40), matrix)
    np.testing.assert_array_equal(stack(rows_to_bytes(matrix), 40), matrix)
    assert stack(blobs[:0], 40).shape == (0, 40)


def test_a_row_at_the_break_even_point_is_stored_dense():
    n = 41  # sparse would be 4 + 8k bytes: shorter than 164 only for k < 20
    matrix = np.zeros((2, n), dtype=np.float32)
    matrix[0, :19] = 1.0
    matrix[1, :20] = 1.0
    short, even = rows_to_bytes(matrix, sparse=True)
    assert short.startswith(SPARSE_TAG) and len(even) == 4 * n
    np.testing.assert_array_equal(stack([short, even], n), matrix)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"XXXX" + b"\x00" * 8, "neither 8 values nor a sparse vector"),
        (SPARSE_TAG + b"\x00" * 5, "neither 8 values nor a sparse vector"),
        (SPARSE_TAG + np.array([9], "<i4").tobytes() + np.array([0.5], "<f4").tobytes(), "outside 0..7"),
    ],
)
def test_a_damaged_blob_is_refused(blob, message):
    with pytest.raises(ValueError, match=message):
        stack([blob], 8)
