"""The masking step of an evaluation pipeline: rows masking leaves unchanged (with
``winner_changes_only``, those whose winner stays) keep the input's probabilities, as they keep
the model's output on the platform."""

from __future__ import annotations

import numpy as np

from taxopost.core import CategoryMap, Taxonomy
from taxopost.tasks import parse_config
from taxopost.tasks.class_masking import ClassMaskingConfig, ClassMaskingSpec
from tests.core.reference import VANESSA, VANESSA_LABELS

SCORES = np.array([[0.5, 0.3, 0.1, 0.1], [0.1, 0.6, 0.1, 0.2]], dtype=np.float32)


def step(tmp_path, **config):
    (tmp_path / "list.txt").write_text("Vanessa atalanta\nVanessa itea\n")
    category_map = CategoryMap(VANESSA_LABELS, Taxonomy(VANESSA))
    settings = parse_config(ClassMaskingConfig, {"taxa_list": "list.txt", **config})
    prepared = ClassMaskingSpec.prepare_offline(settings, category_map, where="steps[0]", base_dir=tmp_path)
    return category_map, settings, prepared


def test_winner_changes_only_keeps_the_input_where_the_winner_stays(tmp_path):
    category_map, settings, prepared = step(tmp_path, winner_changes_only=True)
    out = ClassMaskingSpec.transform(SCORES, category_map, settings, prepared, logits=False, normalized=True)
    np.testing.assert_array_equal(out.scores[0], SCORES[0])  # Vanessa atalanta stays the winner
    np.testing.assert_allclose(out.scores[1], [0.5, 0, 0.5, 0])  # moved off Vanessa cardui: masked
    assert out.winner.tolist() == [0, 0] and out.normalized


def test_the_option_makes_another_step(tmp_path):
    _, _, both = step(tmp_path)
    _, _, winner_only = step(tmp_path, winner_changes_only=True)
    assert both.key != winner_only.key


def test_from_logits_the_kept_rows_are_their_softmax(tmp_path):
    category_map, settings, prepared = step(tmp_path, winner_changes_only=True)
    logits = np.log(SCORES)
    out = ClassMaskingSpec.transform(logits, category_map, settings, prepared, logits=True, normalized=False)
    np.testing.assert_allclose(out.scores[0], SCORES[0], rtol=1e-6)


def test_a_partial_row_nothing_was_removed_from_passes_on_as_it_was(tmp_path):
    """By default too: such a row is unchanged, so the platform keeps the model's row for it; the
    pipeline used to renormalise it to 1, and a roll-up after it then decided otherwise."""
    from taxopost.core.sparse import sparse_rows

    category_map, settings, prepared = step(tmp_path)
    partial = np.array([[0.5, 0, 0.25, 0], [0.3, 0.2, 0.2, 0]], dtype=np.float32)
    out = ClassMaskingSpec.transform(partial, category_map, settings, prepared, logits=False, normalized=False)
    np.testing.assert_array_equal(out.scores[0], partial[0])  # nothing outside the list: unchanged
    np.testing.assert_allclose(out.scores[1], [0.6, 0, 0.4, 0])  # Vanessa cardui removed: renormalised
    assert out.winner.tolist() == [0, 0] and not out.normalized
    rows, cols = np.nonzero(partial)
    sparse = sparse_rows(np.array([0, 2, 5]), cols, partial[rows, cols], 4)
    out_sparse = ClassMaskingSpec.transform(sparse, category_map, settings, prepared, logits=False, normalized=False)
    np.testing.assert_allclose(out_sparse.scores.dense(), out.scores)
