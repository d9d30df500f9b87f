"""The calibration guarantee, checked empirically (slow: run with ``-m slow``).

Assumption: calibration and new rows exchangeable. Guarantee: per rank, with probability at
least 1 - delta, the precision of predictions accepted at that rank is at least the target.
Each trial calibrates on a small random sample of a large simulated pool and measures the
precision on the rest of the pool (large enough to stand for the population).
"""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.core.rollup import rollup_candidates
from taxopost.core.simulate import simulate_outputs
from taxopost.evaluation.calibration import (
    DEFAULT_CALIBRATION_GRID,
    calibrate_thresholds,
    evaluate_thresholds,
    take_rows,
)
from tests.evaluation.conftest import synthetic_map

POOL_ROWS = 60_000
CALIBRATION_ROWS = 1_500
TRIALS = 300


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "target", "delta"), [("lineage", 0.9, 0.1), ("distribution", 0.95, 0.2)])
def test_held_out_precision_reaches_the_target_in_at_least_1_minus_delta_of_splits(mode, target, delta):
    category_map = synthetic_map(10, 5, 6)
    outputs = simulate_outputs(category_map, POOL_ROWS, seed=11)
    truth = category_map.class_taxa[outputs.true_class].astype(np.int64)
    order = ["species", "genus", "family"]
    candidates = rollup_candidates(outputs.scores(), category_map, order=order, mode=mode)
    targets = dict.fromkeys(order, target)
    rng = np.random.default_rng(0)
    met = {rank: [] for rank in order}
    for _ in range(TRIALS):
        permutation = rng.permutation(POOL_ROWS)
        cal, test = permutation[:CALIBRATION_ROWS], permutation[CALIBRATION_ROWS:]
        calibration = calibrate_thresholds(
            take_rows(candidates, cal), truth[cal], category_map.taxonomy, target_precision=targets, delta=delta
        )
        held = evaluate_thresholds(
            take_rows(candidates, test),
            truth[test],
            category_map.taxonomy,
            calibration,
            grid=DEFAULT_CALIBRATION_GRID[:1],
        )
        for rank in held.ranks:
            if rank.threshold is not None and rank.n_accepted:
                met[rank.rank].append(rank.precision >= target)
    for rank, outcomes in met.items():
        assert len(outcomes) >= TRIALS * 0.8, f"{rank}: reached in only {len(outcomes)} of {TRIALS} trials"
        rate = float(np.mean(outcomes))
        slack = 3 * np.sqrt(delta * (1 - delta) / len(outcomes))
        assert rate >= 1 - delta - slack, f"{rank}: target met in {rate:.3f} of trials, below 1 - delta = {1 - delta}"
