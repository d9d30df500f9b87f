"""The bound: how wrong the rows accepted at a threshold can be, at a chosen confidence.

With ``k`` wrong among ``n`` accepted rows, the one-sided Clopper-Pearson upper bound on their
error rate at confidence ``1 - delta`` is ``U = Beta.ppf(1 - delta, k + 1, n - k)`` (``U = 1`` when
``k = n``, ``n = 0`` included): if the rows are exchangeable with new ones, the error rate on new
rows exceeds ``U`` with probability at most ``delta``. It is exact (the binomial tail inverted,
no normal approximation), so it holds for the few rows a fine threshold accepts. The lower bound
on precision is ``1 - U``.

A bound is any function of this shape (:class:`UpperBound`); the testing procedures of
:mod:`taxopost.evaluation.fwer_control` take one and never assume which.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from scipy.stats import beta

from taxopost.errors import InputError


class UpperBound(Protocol):
    """An upper confidence bound on error rates, elementwise over thresholds."""

    def __call__(self, n_errors: np.ndarray | int, n_accepted: np.ndarray | int, delta: float) -> np.ndarray:
        """Bounds of shape ``broadcast(n_errors, n_accepted)``, each exceeded with probability at most ``delta``."""
        ...


def check_delta(delta: object) -> float:
    """``delta`` as a float in (0, 1), or an InputError naming it."""
    try:
        value = float(delta)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError("delta", delta, "must be a number in (0, 1)") from None
    if not 0 < value < 1:
        raise InputError("delta", delta, "must be in (0, 1), e.g. 0.1 for a 90% guarantee")
    return value


def clopper_pearson_upper(n_errors: np.ndarray | int, n_accepted: np.ndarray | int, delta: float) -> np.ndarray:
    """One-sided ``1 - delta`` Clopper-Pearson upper bound on an error rate.

    Parameters
    ----------
    n_errors, n_accepted : int or ndarray of shape (n_thresholds,)
        Wrong and accepted rows (``n_errors <= n_accepted``); broadcast together.
    delta : float in (0, 1)
        Trusted: the doors check it with :func:`check_delta`.

    Returns
    -------
    ndarray of shape broadcast(n_errors, n_accepted), float64
        In (0, 1]; 1 where ``k = n`` (``n = 0`` included: nothing accepted, nothing known).
    """
    k, n = np.broadcast_arrays(np.asarray(n_errors, dtype=np.float64), np.asarray(n_accepted, dtype=np.float64))
    some_right = k < n
    upper = np.ones(k.shape)
    upper[some_right] = beta.ppf(1.0 - delta, k[some_right] + 1, n[some_right] - k[some_right])
    return upper


__all__ = ["UpperBound", "check_delta", "clopper_pearson_upper"]
