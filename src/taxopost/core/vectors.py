"""Score and logit vectors: probabilities from logits, and each row's winning class.

Every importer and task that turns a batch of vectors into "the predicted taxon and its
score" calls :func:`winners`, so the rule (the most probable class that has a taxon) and its
checks are written once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taxopost.core._validation import as_matrix, check_logits, check_probabilities
from taxopost.core.category_map import CategoryMap


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in the input's dtype, shifted by the row maximum (no overflow).

    Trusts its input: check it first (:func:`winners` does). A logit more than the dtype's
    maximum below its row's maximum (``[1e308, -1e308]``) overflows to -inf on the shift, and
    ``exp`` of it is the 0 it should be: the overflow is the expected result, not a warning.
    """
    with np.errstate(over="ignore"):
        out = logits - logits.max(axis=1, keepdims=True)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


@dataclass(frozen=True)
class Winners:
    """Each row's winning class and its probability.

    Attributes
    ----------
    classes : ndarray of shape (n_rows,), intp
        The class index of the most probable class that has a taxon (the first on ties).
    scores : ndarray of shape (n_rows,), the input's dtype
        That class's probability (from logits: after a softmax over all classes).
    """

    classes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return self.classes.size


def winners(values: object, category_map: CategoryMap, *, logits: bool = False, field: str | None = None) -> Winners:
    """Check a batch of vectors and return each row's winning class and its probability.

    Parameters
    ----------
    values : array-like of shape (n_rows, n_classes)
        Probabilities (finite, >= 0, each row summing to 1), or logits (finite) with
        ``logits=True``. float32 stays float32.
    category_map : CategoryMap
        Fixes ``n_classes``; classes without a taxon never win.
    field : str, optional
        Names the matrix in error messages; default ``"logits"`` or ``"scores"``.

    Raises
    ------
    InputError
        For a matrix of the wrong shape or a bad value; its ``row`` names the first bad row.
    """
    field = field or ("logits" if logits else "scores")
    matrix = as_matrix(values, category_map.n_classes, field=field)
    if logits:
        check_logits(matrix, field=field)
        probabilities = softmax(matrix)
    else:
        check_probabilities(matrix, field=field)
        probabilities = matrix
    classes = np.where(category_map.resolved, probabilities, -1).argmax(axis=1)
    return Winners(classes=classes, scores=probabilities[np.arange(len(classes)), classes])
