"""Risk-coverage sweeps: one aggregation pass gives what a roll-up per threshold gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taxopost.core.rollup import apply_thresholds, rank_rollup, rollup_candidates
from taxopost.errors import InputError
from taxopost.evaluation import risk_coverage_curves
from taxopost.evaluation.sweep import accepted_counts, exact_aurc
from tests.core.test_properties import PROPERTY, build, problems

BASE = {"species": 0.8, "genus": 0.6, "family": 0.4}
GRID = np.round(np.linspace(1.0, 0.05, 20), 6)


@pytest.mark.parametrize("mode", ["lineage", "distribution"])
def test_curves_match_one_rollup_per_threshold(synthetic, simulated, mode):
    scores, truth = simulated
    taxonomy = synthetic.taxonomy
    candidates = rollup_candidates(scores, synthetic, order=list(BASE), mode=mode)
    curves = risk_coverage_curves(candidates, truth, taxonomy, thresholds=BASE, grid=GRID)
    assert list(curves) == ["species", "genus", "family"]
    for r, rank in enumerate(BASE):
        curve = curves[rank]
        assert curve.threshold == BASE[rank]
        for k, threshold in enumerate(GRID):
            result = apply_thresholds(candidates, {**BASE, rank: float(threshold)})
            reaching = (result.accepted_rank < 0) | (result.accepted_rank >= r)
            accepted = result.accepted_rank == r
            wrong = accepted & ~taxonomy.is_ancestor_or_self(result.taxon, truth)
            assert curve.n_reaching == reaching.sum()
            assert curve.n_accepted[k] == accepted.sum()
            assert curve.n_errors[k] == wrong.sum()
            assert curve.coverage[k] == pytest.approx(accepted.sum() / reaching.sum())
            if accepted.any():
                assert curve.risk[k] == pytest.approx(wrong.sum() / accepted.sum())
            else:
                assert np.isnan(curve.risk[k])


@PROPERTY
@given(problem=problems(with_thresholds=False), mode=st.sampled_from(["lineage", "distribution"]), data=st.data())
def test_sweep_counts_equal_apply_thresholds_on_random_taxonomies(problem, mode, data):
    """The vectorised sweep accepts, at every rank and grid threshold, exactly the rows apply_thresholds does.

    Random taxonomies (skipped ranks, genus-level classes, unresolved classes), random truths, and
    thresholds that ties and exact multiples of 1/8 or 1/64 hit exactly, in float32 and float64.
    """
    records, labels, order, _, scores = problem
    category_map, _, _ = build(records, labels)
    taxonomy = category_map.taxonomy
    truth = np.array(
        data.draw(st.lists(st.integers(0, taxonomy.n_taxa - 1), min_size=len(scores), max_size=len(scores)))
    )
    threshold = st.sampled_from([0.125, 0.25, 0.5, 0.75, 1.0]) | st.floats(0.01, 1.0)
    base = {rank: data.draw(threshold) for rank in order}
    grid = data.draw(st.lists(threshold, min_size=1, max_size=6))
    candidates = rollup_candidates(scores, category_map, order=order, mode=mode)
    curves = risk_coverage_curves(candidates, truth, taxonomy, thresholds=base, grid=grid)
    for r, rank in enumerate(order):
        curve = curves[rank]
        for k, t in enumerate(curve.thresholds):
            result = apply_thresholds(candidates, {**base, rank: float(t)})
            accepted = result.accepted_rank == r
            wrong = accepted & ~taxonomy.is_ancestor_or_self(result.taxon, truth)
            assert curve.n_reaching == ((result.accepted_rank < 0) | (result.accepted_rank >= r)).sum()
            assert curve.n_accepted[k] == accepted.sum(), (rank, t)
            assert curve.n_errors[k] == wrong.sum(), (rank, t)


def test_curves_match_rank_rollup_itself_at_a_few_thresholds(synthetic, simulated):
    scores, truth = simulated
    candidates = rollup_candidates(scores, synthetic, order=list(BASE), mode="distribution")
    curves = risk_coverage_curves(candidates, truth, synthetic.taxonomy, thresholds=BASE, grid=GRID)
    for k in (0, 7, 15):
        result = rank_rollup(scores, synthetic, thresholds={**BASE, "genus": float(GRID[k])}, mode="distribution")
        assert curves["genus"].n_accepted[k] == (result.accepted_rank == 1).sum()


def test_accepted_counts_by_hand():
    scores = np.array([0.9, 0.5, 0.7, 0.7, 0.2], dtype=np.float32)
    wrong = np.array([False, True, False, True, True])
    n, errors = accepted_counts(scores, wrong, np.array([1.0, 0.7, 0.5, 0.1], dtype=np.float32))
    assert n.tolist() == [0, 3, 4, 5]
    assert errors.tolist() == [0, 1, 2, 3]


def test_exact_aurc_by_hand_with_ties_accepted_together():
    scores = np.array([0.9, 0.7, 0.7, 0.2])
    wrong = np.array([False, False, True, True])
    # thresholds 0.9, 0.7, 0.2: coverage 1/4, 3/4, 1; risk 0, 1/3, 1/2
    assert exact_aurc(scores, wrong, 4) == pytest.approx(0.25 * 0 + 0.5 * (1 / 3) + 0.25 * 0.5)
    # with two rows never reaching a candidate the curve stops at coverage 4/6
    assert exact_aurc(scores, wrong, 6) == pytest.approx((1 / 6) * 0 + (2 / 6) * (1 / 3) + (1 / 6) * 0.5)
    assert np.isnan(exact_aurc(scores[:0], wrong[:0], 3))


def test_exact_aurc_matches_the_mean_of_prefix_risks_without_ties():
    rng = np.random.default_rng(3)
    scores = rng.random(200)
    wrong = rng.random(200) < scores * 0.5
    order = np.argsort(-scores)
    prefix_risk = np.cumsum(wrong[order]) / np.arange(1, 201)
    assert exact_aurc(scores, wrong, 200) == pytest.approx(prefix_risk.mean())


def test_sweep_rejects_bad_grids_and_thresholds(synthetic, simulated):
    scores, truth = simulated
    candidates = rollup_candidates(scores[:50], synthetic, order=list(BASE))
    with pytest.raises(InputError, match=r"^grid="):
        risk_coverage_curves(candidates, truth[:50], synthetic.taxonomy, thresholds=BASE, grid=[0.5, 1.5])
    with pytest.raises(InputError, match=r"^grid="):
        risk_coverage_curves(candidates, truth[:50], synthetic.taxonomy, thresholds=BASE, grid=[])
    with pytest.raises(InputError, match=r"^order="):
        risk_coverage_curves(candidates, truth[:50], synthetic.taxonomy, thresholds={"species": 0.8})
    with pytest.raises(InputError, match=r"^y_true="):
        risk_coverage_curves(candidates, truth[:49], synthetic.taxonomy, thresholds=BASE)
