"""The testing procedure: which of many candidate thresholds may be declared safe together.

Calibration tests one null hypothesis per candidate threshold ``t`` (high to low): "the error
rate of the rows accepted at ``t`` exceeds ``alpha = 1 - target_precision``". A procedure
rejects some of them and returns the index of the threshold it picks among the rejected ones;
it must control the family-wise error rate: the probability that it picks a threshold whose
null is true is at most ``delta``. That, with exchangeability, is the whole guarantee of
:func:`taxopost.evaluation.calibration.calibrate`, so a procedure is swappable
(:class:`TestingProcedure`) without touching the bound or the controller.

:func:`fixed_sequence` (the default) tests thresholds in order and stops at the first failure;
each test is at the full level ``delta``, with no correction for the number of thresholds,
because a hypothesis is only tested when every one before it was rejected.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from taxopost.evaluation.bounds import UpperBound, clopper_pearson_upper


class TestingProcedure(Protocol):
    """Picks one threshold of a rank from its counts, controlling the family-wise error at ``delta``."""

    def __call__(
        self,
        n_errors: np.ndarray,
        n_accepted: np.ndarray,
        *,
        alpha: float,
        delta: float,
        bound: UpperBound = clopper_pearson_upper,
    ) -> int | None:
        """Index of the chosen threshold, or None when no threshold may be declared safe.

        Parameters
        ----------
        n_errors, n_accepted : ndarray of shape (n_thresholds,), int64
            Wrong and accepted rows at each candidate threshold, thresholds from high to low.
        alpha : float in (0, 1)
            The largest acceptable error rate, ``1 - target_precision``.
        delta : float in (0, 1)
            The family-wise error rate to control.
        bound : UpperBound
            The upper bound on an error rate each single test uses.
        """
        ...


def fixed_sequence(
    n_errors: np.ndarray,
    n_accepted: np.ndarray,
    *,
    alpha: float,
    delta: float,
    bound: UpperBound = clopper_pearson_upper,
) -> int | None:
    """Fixed-sequence testing from high to low thresholds; the lowest one before the first failure.

    Threshold ``t`` passes when ``bound(k, n, delta) <= alpha``. Leading thresholds that accept
    too few rows to pass even with no error (``bound(0, n, delta) > alpha``) are skipped, not
    failed: that depends on the scores only, never on the labels, so the sequence stays fixed in
    advance. Controls the family-wise error rate at ``delta`` (Angelopoulos et al. 2021,
    Learn-then-Test).

    Returns
    -------
    int or None
        The index into the thresholds; None when nothing is testable or the first test fails.
    """
    passes = bound(n_errors, n_accepted, delta) <= alpha
    testable = bound(0, n_accepted, delta) <= alpha
    return last_before_first_failure(passes, testable)


def last_before_first_failure(passes: np.ndarray, testable: np.ndarray) -> int | None:
    """Index of the last passing test before the first failure, starting at the first testable one.

    Parameters
    ----------
    passes, testable : ndarray of shape (n_thresholds,), bool
    """
    if not testable.any():
        return None
    start = int(np.argmax(testable))
    sequence = passes[start:]
    failures = np.flatnonzero(~sequence)
    stop = int(failures[0]) if failures.size else sequence.size
    return start + stop - 1 if stop > 0 else None


__all__ = ["TestingProcedure", "fixed_sequence", "last_before_first_failure"]
