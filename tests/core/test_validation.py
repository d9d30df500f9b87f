"""Checks at the door and row chunks: validation fused with row statistics, bounded chunks."""

from __future__ import annotations

import re

import numpy as np
import pytest

from taxopost.core._validation import (
    _PARALLEL_MIN_VALUES,
    SUM_TOLERANCE,
    as_matrix,
    check_logits,
    check_probabilities,
    row_stats,
)
from taxopost.core.chunks import CHUNK_BYTES, chunk_rows_for, iter_row_chunks
from taxopost.core.vectors import softmax
from taxopost.errors import InputError


def test_as_matrix_keeps_float32_and_float64_without_copy():
    for dtype in (np.float32, np.float64):
        values = np.full((2, 3), 1 / 3, dtype=dtype)
        assert as_matrix(values, 3, field="scores") is values


def test_as_matrix_makes_contiguous_and_float64():
    values = np.ones((3, 4), dtype=np.float32)[:, ::2]
    out = as_matrix(values, 2, field="scores")
    assert out.flags.c_contiguous and out.dtype == np.float32
    assert as_matrix(np.ones((1, 2), dtype=np.int32), 2, field="scores").dtype == np.float64
    assert as_matrix(np.ones((1, 2), dtype=bool), 2, field="scores").dtype == np.float64


def test_row_stats():
    x = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]])
    stats = row_stats(x)
    np.testing.assert_allclose(stats.sums, [1.0, 1.0])
    assert stats.mins.tolist() == [0.1, 0.0]
    assert stats.maxs.tolist() == [0.7, 0.5]
    assert stats.argmax.tolist() == [1, 0]  # first maximum on a tie


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_stats_parallel_path_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    x = rng.random((700, 2000)).astype(dtype)
    assert x.size >= _PARALLEL_MIN_VALUES
    stats = row_stats(x)
    np.testing.assert_allclose(stats.sums, x.sum(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(stats.mins, x.min(axis=1))
    np.testing.assert_array_equal(stats.argmax, x.argmax(axis=1))
    np.testing.assert_array_equal(stats.maxs, x.max(axis=1))


def test_check_probabilities_finds_bad_value_in_a_late_block():
    x = np.full((700, 2000), 1 / 2000)
    x[650, 1234] = np.nan
    with pytest.raises(InputError, match=re.escape("scores[650, 1234]=nan: values must be finite")):
        check_probabilities(x, field="scores")
    x[650, 1234] = 1 / 2000
    x[699, 0] = -1e-9
    with pytest.raises(InputError, match=re.escape("scores[699, 0]=-1e-09: probabilities must be >= 0")):
        check_probabilities(x, field="scores", row_offset=0)


def test_check_probabilities_row_offset_in_message():
    with pytest.raises(InputError, match=re.escape("scores[17]='sum=1.5'")):
        check_probabilities(np.array([[0.75, 0.75]]), field="scores", row_offset=17)


def test_check_probabilities_accepts_partial_rows():
    stats = check_probabilities(np.array([[0.5, 0.25, 0.0], [0.0, 0.0, 0.0]]), field="scores")
    assert stats.sums.tolist() == [0.75, 0.0]


def test_check_probabilities_tolerance_is_inclusive_of_rounding():
    inside = np.array([[0.5, 0.5 + SUM_TOLERANCE * 0.9], [0.5, 0.5 - SUM_TOLERANCE * 0.9]])
    check_probabilities(inside, field="scores")
    with pytest.raises(InputError, match=r"sum to at most 1 \(\+0.001\)"):
        check_probabilities(np.array([[0.5, 0.5 + SUM_TOLERANCE * 1.1]]), field="scores")


def test_check_logits_accepts_any_finite_values():
    check_logits(np.array([[-1e30, 0.0, 1e30]]), field="logits")
    with pytest.raises(InputError, match=re.escape("logits[0, 1]=nan")):
        check_logits(np.array([[0.0, np.nan]]), field="logits")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_shifted_and_in_input_dtype(dtype):
    logits = np.array([[1000.0, 999.0, -1000.0]], dtype=dtype)
    out = softmax(logits)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, [[1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1)), 0.0]], rtol=1e-6)
    assert logits[0, 0] == 1000.0  # input untouched


def test_chunk_rows_for_budget():
    matrix = np.empty((10, 1000), dtype=np.float32)
    assert chunk_rows_for(matrix) == CHUNK_BYTES // 4000
    assert chunk_rows_for(matrix, budget=10) == 1
    assert chunk_rows_for(np.empty((3, 0))) >= 1


def test_iter_row_chunks_cover_rows_once():
    assert list(iter_row_chunks(10, 4)) == [(0, 4), (4, 8), (8, 10)]
    assert list(iter_row_chunks(0, 4)) == []
    with pytest.raises(ValueError, match="chunk_rows must be >= 1, got 0"):
        list(iter_row_chunks(5, 0))


def test_wide_blocks_on_the_thread_pool_do_not_wait_on_the_pool_itself():
    """Blocks of many classes are large enough to be parallel themselves: nothing may nest."""
    from taxopost.core.category_map import CategoryMap
    from taxopost.core.masking import class_masking
    from taxopost.core.rollup import rank_rollup
    from taxopost.core.taxonomy import Taxonomy, TaxonRecord

    n_classes = 5000
    records = [TaxonRecord("G", "genus")] + [TaxonRecord(f"s{i}", "species", "G") for i in range(n_classes)]
    category_map = CategoryMap([f"s{i}" for i in range(n_classes)], Taxonomy(records))
    rng = np.random.default_rng(0)
    scores = rng.random((700, n_classes)).astype(np.float32)
    scores /= scores.sum(axis=1, keepdims=True)
    rolled = rank_rollup(scores, category_map, thresholds={"species": 0.9, "genus": 0.5}, mode="distribution")
    assert (rolled.accepted_rank == 1).all()
    keep = np.zeros(n_classes, dtype=bool)
    keep[:10] = True
    assert class_masking(scores, category_map, keep).changed.all()
