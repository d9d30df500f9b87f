"""Coverage of a taxa list: the share of classes and of probability mass it keeps, and when to warn."""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.core import CategoryMap
from taxopost.core.coverage import MIN_CLASS_SHARE, MIN_MASS_SHARE, class_mass, mask_coverage
from taxopost.core.masking import class_masking
from taxopost.core.sparse import sparse_rows
from taxopost.core.vectors import softmax
from taxopost.errors import InputError

KEEP = np.array([True, False, True, False])  # Vanessa atalanta and Vanessa itea
SCORES = np.array([[0.5, 0.3, 0.1, 0.1], [0.1, 0.6, 0.1, 0.2], [0.2, 0.2, 0.2, 0.2]], dtype=np.float32)


def test_class_mass_sums_probabilities_per_class(vanessa_map):
    np.testing.assert_allclose(class_mass(SCORES, vanessa_map), SCORES.sum(axis=0, dtype=np.float64), rtol=1e-7)


def test_class_mass_adds_up_over_chunks_and_batches(vanessa_map):
    scores = np.random.default_rng(1).dirichlet(np.ones(4), size=1000).astype(np.float32)
    whole = class_mass(scores, vanessa_map)
    np.testing.assert_allclose(class_mass(scores, vanessa_map, chunk_rows=7), whole, rtol=1e-9)
    np.testing.assert_allclose(class_mass(scores[:400], vanessa_map) + class_mass(scores[400:], vanessa_map), whole)


def test_class_mass_of_logits_is_that_of_their_softmax(vanessa_map):
    logits = np.random.default_rng(2).normal(0, 4, size=(50, 4))
    np.testing.assert_allclose(class_mass(logits, vanessa_map, logits=True), softmax(logits.copy()).sum(axis=0))


def test_class_mass_of_sparse_rows_equals_the_dense_one(vanessa_map):
    dense = np.array([[0.6, 0.0, 0.3, 0.0], [0.0, 0.9, 0.0, 0.0]], dtype=np.float32)
    pairs = sparse_rows([0, 2, 3], [0, 2, 1], np.array([0.6, 0.3, 0.9], dtype=np.float32), 4)
    np.testing.assert_allclose(class_mass(pairs, vanessa_map), class_mass(dense, vanessa_map))


def test_class_mass_rejects_what_the_tasks_reject(vanessa_map):
    with pytest.raises(InputError, match=r"scores\[1\]"):
        class_mass(np.array([[0.5, 0.5, 0, 0], [0.9, 0.9, 0, 0]]), vanessa_map)
    with pytest.raises(InputError, match="category map has 4 classes"):
        class_mass(np.ones((2, 3)) / 3, vanessa_map)


def test_mask_coverage_counts_kept_classes_and_mass(vanessa_map):
    coverage = mask_coverage(KEEP, vanessa_map, class_mass(SCORES, vanessa_map), rows=3)
    assert (coverage.kept_classes, coverage.n_classes, coverage.rows) == (2, 4, 3)
    assert coverage.kept_mass == pytest.approx((0.6 + 0.2 + 0.4) / (1.0 + 1.0 + 0.8))
    # the mass share is the mass masking removes, row by row, weighted by the rows' mass
    removed = class_masking(SCORES, vanessa_map, KEEP).removed_mass
    assert 1 - coverage.kept_mass == pytest.approx(removed.sum() / SCORES.sum())
    # 50% of the classes is enough; 43% of the mass is not
    assert not coverage.low_classes and coverage.low_mass and coverage.low
    assert "below 50% of the probability mass;" in coverage.warning()


def test_mask_coverage_classes_only_without_rows(vanessa_map):
    keep = np.array([True, False, False, False])
    coverage = mask_coverage(keep, vanessa_map)  # 1 of 4: exactly 25% is not below
    assert coverage.class_share == MIN_CLASS_SHARE and not coverage.low_classes
    assert coverage.kept_mass is None and coverage.warning() is None


def test_mask_coverage_thresholds_are_strict(vanessa_map):
    at_half = np.array([[0.5, 0.5, 0.0, 0.0]])
    coverage = mask_coverage(
        np.array([True, False, False, False]), vanessa_map, class_mass(at_half, vanessa_map), rows=1
    )
    assert coverage.kept_mass == MIN_MASS_SHARE and not coverage.low


def test_the_warning_gives_the_numbers(moths_map):
    keep = np.zeros(moths_map.n_classes, dtype=bool)
    keep[0] = True
    scores = np.full((10, moths_map.n_classes), 1.0 / moths_map.n_classes)
    coverage = mask_coverage(keep, moths_map, class_mass(scores, moths_map), rows=10, scope_rows=1000)
    assert coverage.low_classes and coverage.low_mass
    message = coverage.warning()
    share = 1 / moths_map.n_classes
    assert f"keeps 1 of {moths_map.n_classes} classes ({share:.1%})" in message
    assert f"{share:.1%} of the probability mass of a sample of 10 of 1,000 predictions" in message
    assert "below 25% of the classes and 50% of the probability mass" in message
    assert coverage.as_dict()["kept_classes"] == 1 and coverage.as_dict()["scope_rows"] == 1000


def test_unresolved_classes_are_never_kept(vanessa):
    cmap = CategoryMap(["Vanessa atalanta", "Nonexistent moth"], vanessa, on_unresolved="exclude")
    coverage = mask_coverage(np.array([True, True]), cmap)
    assert (coverage.kept_classes, coverage.n_classes) == (1, 2)


def test_mask_coverage_rejects_vectors_of_another_map(vanessa_map):
    with pytest.raises(InputError, match="keep=.*boolean vector of 4 classes"):
        mask_coverage(np.array([True, False]), vanessa_map)
    with pytest.raises(InputError, match="mass=.*one sum per class"):
        mask_coverage(KEEP, vanessa_map, np.ones(3), rows=1)


def test_winner_only_counts_a_change_only_when_the_winning_taxon_moves(vanessa_map):
    full = class_masking(SCORES, vanessa_map, KEEP)
    winner_only = class_masking(SCORES, vanessa_map, KEEP, winner_only=True)
    assert full.changed.tolist() == [True, True, True]  # mass removed from every row
    # row 0 keeps Vanessa atalanta; row 1 moves off V. cardui; row 2 (a tie) stays on class 0
    assert winner_only.changed.tolist() == [False, True, False]
    np.testing.assert_array_equal(winner_only.scores, full.scores)  # only the decision differs
