"""Class masking: excluded classes get 0, the kept ones are renormalised, the winner recomputed."""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.core import CategoryMap
from taxopost.core.masking import MIN_REMOVED_MASS, class_masking
from taxopost.core.sparse import SparseRows, sparse_rows
from taxopost.errors import InputError
from tests.core.reference import VANESSA_LABELS, assert_same_result, exact_rows, reference_softmax_kept

DTYPES = [np.float32, np.float64]
KEEP = np.array([True, False, True, False])  # Vanessa atalanta and Vanessa itea


@pytest.mark.parametrize("dtype", DTYPES)
def test_class_masking_logits_equal_softmax_over_kept(vanessa_map, dtype):
    logits = np.random.default_rng(0).normal(0, 3, size=(20, 4)).astype(dtype)
    result = class_masking(logits, vanessa_map, KEEP, logits=True)
    assert result.scores.dtype == dtype
    assert (result.scores[:, ~KEEP] == 0).all()
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(result.scores, reference_softmax_kept(logits, KEEP), rtol=rtol, atol=1e-7)


def test_class_masking_logits_shift_by_kept_maximum(vanessa_map):
    # Under the global shift the kept classes underflow to 0; shifted by their own maximum they do not.
    logits = np.array([[1000.0, 0.0, 1.0, -5.0]])
    result = class_masking(logits, vanessa_map, np.array([False, True, True, False]), logits=True)
    np.testing.assert_allclose(result.scores[0], [0.0, 1 / (1 + np.e), np.e / (1 + np.e), 0.0])
    assert result.winner.tolist() == [2]
    assert result.source_class.tolist() == [0]
    np.testing.assert_allclose(result.removed_mass, [1.0])


def test_class_masking_logits_without_reweight_keeps_absolute(vanessa_map):
    logits = np.log(np.array([[0.5, 0.25, 0.125, 0.125]]))
    result = class_masking(logits, vanessa_map, KEEP, logits=True, reweight=False)
    np.testing.assert_allclose(result.scores, [[0.5, 0.0, 0.125, 0.0]])
    np.testing.assert_allclose(result.removed_mass, [0.375])
    np.testing.assert_allclose(result.source_score, [0.5])


@pytest.mark.parametrize(("dtype", "gap"), [(np.float32, 200.0), (np.float64, 1200.0)])
def test_without_reweight_the_winner_is_the_best_kept_logit_when_their_probabilities_underflow(vanessa_map, dtype, gap):
    """Under the global softmax every kept class's probability is 0: the winner still follows the logits."""
    logits = np.array([[0.0, -gap, -0.75 * gap, -gap]], dtype=dtype)  # the excluded atalanta leads
    keep = np.array([False, True, True, False])
    result = class_masking(logits, vanessa_map, keep, logits=True, reweight=False)
    assert (result.scores == 0).all() and result.winner.tolist() == [2]
    assert result.winner.tolist() == class_masking(logits, vanessa_map, keep, logits=True).winner.tolist()


@pytest.mark.parametrize("dtype", DTYPES)
def test_class_masking_scores_reweight_renormalises(vanessa_map, dtype):
    scores = np.array([[0.5, 0.25, 0.125, 0.125]], dtype=dtype)
    result = class_masking(scores, vanessa_map, KEEP)
    np.testing.assert_allclose(result.scores, [[0.8, 0.0, 0.2, 0.0]], rtol=1e-6)
    assert result.scores.dtype == result.score.dtype == result.source_score.dtype == dtype
    assert result.removed_mass.dtype == np.float64
    np.testing.assert_allclose(result.score, [0.8], rtol=1e-6)
    assert result.removed_mass.tolist() == [0.375]


def test_class_masking_scores_without_reweight_keep_absolute(vanessa_map):
    scores = np.array([[0.5, 0.25, 0.125, 0.125]])
    result = class_masking(scores, vanessa_map, KEEP, reweight=False)
    assert result.scores.tolist() == [[0.5, 0.0, 0.125, 0.0]]
    assert result.score.tolist() == [0.5]


@pytest.mark.parametrize("logits", [False, True])
def test_class_masking_winner_is_argmax_over_kept(vanessa_map, logits):
    scores = np.array([[0.125, 0.5, 0.25, 0.125], [0.5, 0.25, 0.125, 0.125]])
    result = class_masking(np.log(scores) if logits else scores, vanessa_map, KEEP, logits=logits)
    assert result.source_class.tolist() == [1, 0]
    np.testing.assert_allclose(result.source_score, [0.5, 0.5])
    assert result.winner.tolist() == [2, 0]
    np.testing.assert_allclose(result.score, [2 / 3, 0.8])


def test_class_masking_changed_iff_excluded_classes_had_mass(vanessa_map):
    scores = np.array([[0.5, 0.0, 0.5, 0.0], [0.5, 0.25, 0.25, 0.0], [0.75, 0.0, 0.25, 0.0]])
    result = class_masking(scores, vanessa_map, KEEP, min_removed_mass=0.0)
    assert result.removed_mass.tolist() == [0.0, 0.25, 0.0]
    assert result.changed.tolist() == [False, True, False]
    np.testing.assert_array_equal(result.scores[[0, 2]], scores[[0, 2]])


def test_class_masking_tiny_removed_mass_is_not_a_change(vanessa_map):
    tiny = MIN_REMOVED_MASS / 2
    scores = np.array([[0.5, tiny, 0.5 - tiny, 0.0], [0.5, 2 * MIN_REMOVED_MASS, 0.5 - 2 * MIN_REMOVED_MASS, 0.0]])
    result = class_masking(scores, vanessa_map, KEEP)
    assert result.changed.tolist() == [False, True]
    assert class_masking(scores, vanessa_map, KEEP, min_removed_mass=0.0).changed.tolist() == [True, True]


def test_class_masking_moved_winner_is_a_change(vanessa_map):
    scores = np.array([[0.25, 0.75, 0.0, 0.0]])
    result = class_masking(scores, vanessa_map, KEEP, min_removed_mass=1.0)
    assert result.winner.tolist() == [0]
    assert result.changed.tolist() == [True]


@pytest.mark.parametrize("reweight", [True, False])
def test_class_masking_no_kept_mass_becomes_uniform(vanessa_map, reweight):
    scores = np.array([[0.0, 0.5, 0.0, 0.5], [0.5, 0.25, 0.25, 0.0]])
    result = class_masking(scores, vanessa_map, KEEP, reweight=reweight)
    assert result.no_kept_mass.tolist() == [True, False]
    if reweight:
        assert result.scores[0].tolist() == [0.5, 0.0, 0.5, 0.0]
        assert result.score[0] == 0.5
    else:  # absolute probabilities: nothing to spread, the row stays all 0
        assert result.scores[0].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert result.winner[0] == 0  # the first kept class
    assert result.changed[0]


def test_class_masking_logits_never_lack_kept_mass(vanessa_map):
    result = class_masking(np.array([[0.0, 50.0, -60.0, 50.0]]), vanessa_map, KEEP, logits=True)
    assert result.no_kept_mass.tolist() == [False]
    np.testing.assert_allclose(result.scores[0], [1.0, 0.0, 0.0, 0.0], atol=1e-20)


def test_class_masking_taxa_list_admits_descendants(moths_map):
    taxonomy = moths_map.taxonomy
    keep = moths_map.admitted_by([taxonomy.index("Catocala")])
    scores = np.full((1, moths_map.n_classes), 1 / 9)
    result = class_masking(scores, moths_map, keep)
    kept = np.flatnonzero(result.scores[0])
    assert [moths_map.labels[c] for c in kept] == ["Catocala ilia", "Catocala relicta", "Catocala"]
    np.testing.assert_allclose(result.scores[0, kept], [1 / 3] * 3)


def test_class_masking_unresolved_classes_always_excluded(vanessa):
    category_map = CategoryMap([*VANESSA_LABELS, "Mystery moth"], vanessa, on_unresolved="exclude")
    scores = np.array([[0.25, 0.0, 0.25, 0.0, 0.5]])
    result = class_masking(scores, category_map, np.ones(5, dtype=bool))
    assert result.scores.tolist() == [[0.5, 0.0, 0.5, 0.0, 0.0]]
    assert result.removed_mass.tolist() == [0.5]
    assert result.source_class.tolist() == [4]  # before masking: the argmax over all classes
    assert result.winner.tolist() == [0]


def test_class_masking_without_returned_scores(vanessa_map):
    scores = exact_rows(np.random.default_rng(1), 12, 4)
    full = class_masking(scores, vanessa_map, KEEP)
    lean = class_masking(scores, vanessa_map, KEEP, return_scores=False)
    assert lean.scores is None
    for name in ("source_class", "source_score", "winner", "score", "removed_mass", "changed", "no_kept_mass"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(full, name), err_msg=name)


def test_class_masking_partial_rows(vanessa_map):
    scores = np.array([[0.25, 0.125, 0.125, 0.0]])
    result = class_masking(scores, vanessa_map, KEEP)
    np.testing.assert_allclose(result.scores, [[2 / 3, 0.0, 1 / 3, 0.0]])
    kept = class_masking(scores, vanessa_map, KEEP, reweight=False)
    np.testing.assert_allclose(kept.scores, [[0.25, 0.0, 0.125, 0.0]])
    with pytest.raises(InputError, match=r"scores\[0\]='sum=2': probabilities must sum to at most 1"):
        class_masking(scores * 4, vanessa_map, KEEP)


def test_class_masking_reports_progress(vanessa_map):
    done: list[int] = []
    class_masking(exact_rows(np.random.default_rng(2), 9, 4), vanessa_map, KEEP, chunk_rows=4, progress=done.append)
    assert done == [4, 4, 1]


def test_class_masking_keep_everything_changes_nothing(vanessa_map):
    scores = exact_rows(np.random.default_rng(3), 8, 4)
    result = class_masking(scores, vanessa_map, np.ones(4, dtype=bool))
    np.testing.assert_array_equal(result.scores, scores)
    assert not result.changed.any()
    assert (result.winner == result.source_class).all()


def test_class_masking_same_result_whatever_the_chunks(vanessa_map):
    scores = exact_rows(np.random.default_rng(4), 30, 4)
    assert_same_result(class_masking(scores, vanessa_map, KEEP, chunk_rows=1), class_masking(scores, vanessa_map, KEEP))


def _to_sparse(scores: np.ndarray) -> SparseRows:
    """The nonzero entries of ``scores`` as pairs (a row of zeros has none)."""
    rows, cols = np.nonzero(scores)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=scores.shape[0]))])
    return sparse_rows(indptr, cols, scores[rows, cols], scores.shape[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_class_masking_sparse_equals_dense(vanessa_map, dtype):
    rng = np.random.default_rng(5)
    scores = exact_rows(rng, 20, 4).astype(dtype)
    scores[rng.random(scores.shape) < 0.4] = 0
    scores[:3] = [[0.6, 0.3, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.2, 0.0, 0.8]]  # no kept mass (KEEP: 0, 2)
    keep = np.array([False, False, True, True])
    for k in (KEEP, keep):
        for reweight in (True, False):
            dense = class_masking(scores, vanessa_map, k, reweight=reweight)
            sparse = class_masking(_to_sparse(scores), vanessa_map, k, reweight=reweight)
            np.testing.assert_array_equal(sparse.scores.dense(), dense.scores)
            for field in ("winner", "score", "no_kept_mass", "changed", "source_class", "removed_mass"):
                np.testing.assert_array_equal(getattr(sparse, field), getattr(dense, field), err_msg=field)


def test_class_masking_sparse_row_without_kept_mass_is_uniform(vanessa_map):
    pairs = sparse_rows([0, 2, 3], [0, 1, 2], [0.6, 0.3, 1.0], 4)
    result = class_masking(pairs, vanessa_map, np.array([False, False, True, True]))
    assert result.scores.dense().tolist() == [[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 0.0]]
    assert result.no_kept_mass.tolist() == [True, False]
    assert result.winner.tolist() == [2, 2] and result.score[0] == 0.5
