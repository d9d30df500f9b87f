"""winners and softmax: each row's winning class and its probability, checked at the door."""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.core import CategoryMap, softmax, winners
from taxopost.errors import InputError


def test_winners_are_the_argmax_and_its_probability(vanessa_map):
    scores = np.array([[0.1, 0.6, 0.2, 0.1], [0.7, 0.1, 0.1, 0.1]], dtype=np.float32)
    found = winners(scores, vanessa_map)
    assert found.classes.tolist() == [1, 0] and len(found) == 2
    assert found.scores.dtype == np.float32 and found.scores.tolist() == [scores[0, 1], scores[1, 0]]


def test_winners_from_logits_are_those_of_their_softmax(vanessa_map):
    logits = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32) * 5
    from_logits = winners(logits, vanessa_map, logits=True)
    from_scores = winners(softmax(logits), vanessa_map)
    np.testing.assert_array_equal(from_logits.classes, from_scores.classes)
    np.testing.assert_array_equal(from_logits.scores, from_scores.scores)
    np.testing.assert_allclose(from_logits.scores, np.exp(logits).max(axis=1) / np.exp(logits).sum(axis=1), rtol=1e-5)


def test_a_class_without_a_taxon_never_wins(vanessa):
    category_map = CategoryMap(["Vanessa atalanta", "Nowhere", "Danaus plexippus"], vanessa, on_unresolved="exclude")
    found = winners(np.array([[0.2, 0.7, 0.1], [0.1, 0.8, 0.1]]), category_map)
    assert found.classes.tolist() == [0, 0]  # the first of equal scores on a tie
    assert found.scores.tolist() == [0.2, 0.1]


@pytest.mark.parametrize(
    ("row", "logits", "message"),
    [
        ([0.5, np.nan, 0.25, 0.25], False, r"scores\[2, 1\]=nan: values must be finite"),
        ([0.5, -0.5, 0.5, 0.5], False, r"scores\[2, 1\]=-0.5: probabilities must be >= 0"),
        ([0.5, 0.5, 0.5, 0.5], False, r"scores\[2\]='sum=2': probabilities must sum to at most 1"),
        ([1.0, np.inf, 0.0, 0.0], True, r"logits\[2, 1\]=inf: values must be finite"),
    ],
)
def test_winners_refuse_a_bad_row_naming_it(vanessa_map, row, logits, message):
    values = np.full((4, 4), 0.25)
    values[2] = row
    with pytest.raises(InputError, match=message) as error:
        winners(values, vanessa_map, logits=logits)
    assert error.value.row == 2


def test_winners_refuse_vectors_of_another_length(vanessa_map):
    with pytest.raises(InputError, match="vectors have 3 values but the category map has 4 classes") as error:
        winners(np.full((2, 3), 1 / 3), vanessa_map, field="probabilities")
    assert error.value.field == "probabilities" and error.value.row is None
