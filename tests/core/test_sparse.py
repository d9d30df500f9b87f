"""Top-k rows in CSR form: checked once, densified per chunk, the same results as dense rows."""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.core.masking import class_masking
from taxopost.core.rollup import rank_rollup, rollup_candidates
from taxopost.core.sparse import SparseRows, sparse_rows
from taxopost.errors import InputError


def random_top_k(rng: np.random.Generator, n_rows: int, n_classes: int, k: int) -> SparseRows:
    indices = np.concatenate([rng.choice(n_classes, k, replace=False) for _ in range(n_rows)])
    values = (rng.dirichlet(np.ones(k + 1), size=n_rows)[:, :k]).ravel().astype(np.float32)
    return sparse_rows(np.arange(0, n_rows * k + 1, k), indices, values, n_classes)


def test_sparse_rows_dense_places_each_pair():
    rows = sparse_rows([0, 2, 2, 3], [3, 0, 1], np.array([0.5, 0.25, 1.0], np.float32), 4)
    np.testing.assert_array_equal(rows.dense(), [[0.25, 0, 0, 0.5], [0, 0, 0, 0], [0, 1.0, 0, 0]])
    np.testing.assert_array_equal(rows.dense(1, 3), rows.dense()[1:3])
    assert rows.shape == (3, 4)
    assert rows.pair_rows().tolist() == [0, 0, 2]


@pytest.mark.parametrize(
    ("indptr", "indices", "message"),
    [
        ([0, 2], [1, 1], r"scores\[0, 1\]=0.5: a class appears twice in one row"),
        ([0, 1, 2], [0, 4], r"scores\[1\]=4: class outside the category map's 4"),
        ([0, 3], [0, 1], r"scores.indptr=2: row offsets must start at 0"),
    ],
)
def test_sparse_rows_refuse_bad_structure(indptr, indices, message):
    with pytest.raises(InputError, match=message):
        sparse_rows(indptr, indices, np.full(len(indices), 0.5), 4)


@pytest.mark.parametrize("mode", ["lineage", "distribution"])
def test_rollup_of_sparse_rows_equals_the_dense_rollup(vanessa_map, mode):
    rows = random_top_k(np.random.default_rng(3), 50, vanessa_map.n_classes, 2)
    thresholds = {"species": 0.8, "genus": 0.5, "family": 0.3}
    sparse = rank_rollup(rows, vanessa_map, thresholds=thresholds, mode=mode, chunk_rows=7)
    dense = rank_rollup(rows.dense(), vanessa_map, thresholds=thresholds, mode=mode)
    for name in ("taxon", "score", "source_taxon", "accepted_rank", "changed", "evidence_taxon"):
        np.testing.assert_array_equal(getattr(sparse, name), getattr(dense, name), err_msg=name)
    candidates = rollup_candidates(rows, vanessa_map, order=("species", "genus", "family"), mode=mode)
    reference = rollup_candidates(rows.dense(), vanessa_map, order=("species", "genus", "family"), mode=mode)
    np.testing.assert_array_equal(candidates.evidence_score, reference.evidence_score)


@pytest.mark.parametrize("reweight", [True, False])
def test_masking_sparse_rows_masks_each_pair(vanessa_map, reweight):
    rows = random_top_k(np.random.default_rng(4), 40, vanessa_map.n_classes, 3)
    keep = np.array([True, False, True, True])
    sparse = class_masking(rows, vanessa_map, keep, reweight=reweight, chunk_rows=6)
    dense = class_masking(rows.dense(), vanessa_map, keep, reweight=reweight)
    assert isinstance(sparse.scores, SparseRows)
    np.testing.assert_allclose(sparse.scores.dense(), dense.scores, rtol=1e-6)
    np.testing.assert_array_equal(sparse.winner, dense.winner)
    np.testing.assert_array_equal(sparse.changed, dense.changed)


def test_sparse_rows_are_checked_as_probabilities_with_their_row(vanessa_map):
    rows = sparse_rows([0, 1, 3], [0, 1, 2], np.array([0.9, 0.7, 0.6], np.float32), 4)
    with pytest.raises(InputError, match=r"scores\[1\]='sum=1.3'") as caught:
        rank_rollup(rows, vanessa_map)
    assert caught.value.row == 1


def test_sparse_rows_cannot_be_logits(vanessa_map):
    rows = sparse_rows([0, 1], [0], np.array([0.9], np.float32), 4)
    with pytest.raises(InputError, match="logits must be full vectors"):
        rank_rollup(rows, vanessa_map, logits=True)
