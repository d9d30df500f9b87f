"""Threshold calibration: the bound, fixed-sequence testing, unreachable ranks, the config, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from taxopost.core.rollup import apply_thresholds, rollup_candidates
from taxopost.errors import InputError
from taxopost.evaluation import calibrate, calibrate_thresholds, evaluate_thresholds, split_rows
from taxopost.evaluation.bounds import clopper_pearson_upper
from taxopost.evaluation.calibration import DEFAULT_CALIBRATION_GRID, select_ranks, take_rows
from taxopost.evaluation.fwer_control import fixed_sequence, last_before_first_failure
from taxopost.evaluation.sweep import accepted_counts, rank_column
from taxopost.tasks import parse_config
from taxopost.tasks.rank_rollup import RankRollupConfig

ORDER = ["species", "genus", "family"]


def test_clopper_pearson_upper_bound_is_the_binomial_tail_inversion():
    k = np.array([0, 3, 10, 50])
    n = np.array([10, 100, 100, 1000])
    upper = clopper_pearson_upper(k, n, 0.1)
    assert binom.cdf(k, n, upper) == pytest.approx(np.full(4, 0.1))
    assert clopper_pearson_upper(np.array([5, 0]), np.array([5, 0]), 0.1).tolist() == [1.0, 1.0]
    assert clopper_pearson_upper(0, 22, 0.1) == pytest.approx(1 - 0.1 ** (1 / 22))


def test_fixed_sequence_stops_at_the_first_failure_after_the_first_testable_threshold():
    passes = np.array([False, False, True, True, False, True, True])
    testable = np.array([False, True, True, True, True, True, True])
    assert last_before_first_failure(passes, testable) is None  # the first testable threshold fails: stop
    testable = np.array([False, False, True, True, True, True, True])
    assert last_before_first_failure(passes, testable) == 3  # never reaches the later passes
    assert last_before_first_failure(np.ones(4, bool), np.ones(4, bool)) == 3
    assert last_before_first_failure(np.ones(4, bool), np.zeros(4, bool)) is None


def test_fixed_sequence_skips_untestable_thresholds_and_tests_with_the_given_bound():
    # 5 rows accept nothing at 90% confidence for a 10% error rate even when all are right.
    n_accepted = np.array([5, 40, 80, 120])
    n_errors = np.array([0, 0, 2, 30])
    assert fixed_sequence(n_errors, n_accepted, alpha=0.1, delta=0.1) == 2
    never = fixed_sequence(n_errors, n_accepted, alpha=0.1, delta=0.1, bound=lambda k, n, d: np.ones(np.shape(n)))
    assert never is None


def test_calibration_uses_the_procedure_it_is_given(candidates, simulated, synthetic):
    _, truth = simulated
    seen = []

    def first_testable(n_errors, n_accepted, *, alpha, delta, bound):
        seen.append((alpha, delta))
        ok = bound(n_errors, n_accepted, delta) <= alpha
        return int(np.argmax(ok)) if ok.any() else None

    calibration = calibrate_thresholds(
        candidates, truth, synthetic.taxonomy, target_precision=0.9, delta=0.2, procedure=first_testable
    )
    assert seen == [(pytest.approx(0.1), 0.2)] * len(ORDER)
    default = calibrate_thresholds(candidates, truth, synthetic.taxonomy, target_precision=0.9, delta=0.2)
    assert calibration.thresholds["species"] > default.thresholds["species"]  # the highest passing one


@pytest.fixture(scope="module")
def candidates(synthetic, simulated):
    scores, _ = simulated
    return rollup_candidates(scores, synthetic, order=ORDER)


def test_calibrated_thresholds_follow_the_construction(candidates, simulated, synthetic):
    _, truth = simulated
    taxonomy = synthetic.taxonomy
    calibration = calibrate_thresholds(candidates, truth, taxonomy, target_precision=0.9, delta=0.1)
    grid = DEFAULT_CALIBRATION_GRID
    accepted_before = np.zeros(len(candidates), dtype=bool)
    assert [r.rank for r in calibration.ranks] == ORDER
    for r, rank in enumerate(calibration.ranks):
        assert rank.reached
        scores, wrong = rank_column(candidates, r, ~accepted_before, truth, taxonomy)
        n, errors = accepted_counts(scores, wrong, grid.astype(np.float32))
        upper = clopper_pearson_upper(errors, n, 0.1)
        chosen = int(np.flatnonzero(grid == rank.threshold)[0])
        first = int(np.argmax(clopper_pearson_upper(0, n, 0.1) <= 0.1))
        assert (upper[first : chosen + 1] <= 0.1).all()  # every tested threshold down to the chosen one passed
        assert chosen == grid.size - 1 or upper[chosen + 1] > 0.1  # and the next one failed
        assert (rank.n_accepted, rank.n_errors) == (n[chosen], errors[chosen])
        assert rank.precision_bound == pytest.approx(1 - upper[chosen])
        assert rank.precision_bound >= 0.9
        accepted_before |= ~accepted_before & (candidates.evidence_score[:, r] >= np.float32(rank.threshold))
    config = calibration.config()
    assert config == RankRollupConfig(thresholds=calibration.thresholds, order=ORDER, mode="lineage")
    assert parse_config(RankRollupConfig, config.model_dump()) == config


def test_a_higher_target_or_smaller_delta_never_lowers_a_threshold(candidates, simulated, synthetic):
    _, truth = simulated
    loose = calibrate_thresholds(candidates, truth, synthetic.taxonomy, target_precision=0.85).thresholds
    strict = calibrate_thresholds(candidates, truth, synthetic.taxonomy, target_precision=0.95).thresholds
    assert strict["species"] >= loose["species"]
    sure = calibrate_thresholds(candidates, truth, synthetic.taxonomy, target_precision=0.85, delta=0.001).thresholds
    assert sure["species"] >= loose["species"]


def test_unreachable_ranks_are_reported_and_left_out_of_the_config(candidates, simulated, synthetic):
    _, truth = simulated
    targets = {"species": 0.99999, "genus": 0.9, "family": 0.99999}
    calibration = calibrate_thresholds(candidates, truth, synthetic.taxonomy, target_precision=targets)
    assert calibration.unreachable == ["species", "family"]
    assert calibration.ranks[0].threshold is None and calibration.ranks[0].n_accepted == 0
    assert calibration.config().order == ["genus"]
    assert calibration.ranks[1].n_reaching == len(candidates)  # nothing was accepted at species
    nothing = calibrate_thresholds(candidates, truth, synthetic.taxonomy, target_precision=0.99999)
    assert nothing.config() is None and nothing.thresholds == {}
    held = evaluate_thresholds(candidates, truth, synthetic.taxonomy, nothing)
    assert held.not_accepted.n == len(candidates)


def test_held_out_evaluation_matches_apply_thresholds(candidates, simulated, synthetic):
    _, truth = simulated
    taxonomy = synthetic.taxonomy
    cal, test = split_rows(len(candidates), 0.5, seed=1)
    calibration = calibrate_thresholds(take_rows(candidates, cal), truth[cal], taxonomy, target_precision=0.9)
    held = evaluate_thresholds(take_rows(candidates, test), truth[test], taxonomy, calibration)
    result = apply_thresholds(take_rows(candidates, test), calibration.thresholds)
    correct = taxonomy.is_ancestor_or_self(result.taxon, truth[test])
    assert held.n == test.size
    assert held.accuracy == pytest.approx(correct.mean())
    for r, rank in enumerate(held.ranks):
        at = result.accepted_rank == r
        assert rank.n_accepted == at.sum()
        assert rank.coverage == pytest.approx(at.mean())
        assert rank.precision == pytest.approx(correct[at].mean())
        assert rank.met == (rank.precision >= rank.target)
    assert held.not_accepted.n == (result.accepted_rank < 0).sum()


def test_held_out_evaluation_refuses_candidates_of_another_order_or_mode(candidates, simulated, synthetic):
    """Ranks pair with the candidates' columns by position: other candidates would be read wrong."""
    _, truth = simulated
    taxonomy = synthetic.taxonomy
    coarse = calibrate_thresholds(select_ranks(candidates, [2]), truth, taxonomy, target_precision=0.9)
    with pytest.raises(InputError, match=r"candidates.order=\['species', 'genus', 'family'\].*\['family'\]"):
        evaluate_thresholds(candidates, truth, taxonomy, coarse)
    other = rollup_candidates(simulated[0], synthetic, order=ORDER, mode="distribution")
    calibration = calibrate_thresholds(candidates, truth, taxonomy, target_precision=0.9)
    with pytest.raises(InputError, match="candidates.mode='distribution': the calibration was made in lineage mode"):
        evaluate_thresholds(other, truth, taxonomy, calibration)


def test_select_ranks_keeps_columns(candidates):
    picked = select_ranks(candidates, [0, 2])
    assert picked.order == ("species", "family")
    assert np.array_equal(picked.evidence_score[:, 1], candidates.evidence_score[:, 2], equal_nan=True)


def test_split_rows_is_a_seeded_partition():
    cal, test = split_rows(101, 0.3, seed=4)
    assert cal.size == 30 and test.size == 71
    assert np.array_equal(np.sort(np.concatenate([cal, test])), np.arange(101))
    assert np.array_equal(cal, split_rows(101, 0.3, seed=4)[0])
    assert not np.array_equal(cal, split_rows(101, 0.3, seed=5)[0])


def test_calibrate_end_to_end_defaults_the_order_from_the_label_space(synthetic, simulated):
    scores, truth = simulated
    report = calibrate(scores, synthetic, truth, target_precision=0.9, mode="distribution", seed=3)
    assert [r.rank for r in report.calibration.ranks] == ORDER
    assert report.calibration.mode == "distribution"
    assert report.n_calibration + report.n_test == len(truth)
    assert report.calibration.config().mode == "distribution"
    assert [r.rank for r in report.held_out.ranks] == ORDER
    assert report.held_out.n == report.n_test
    by_rank = calibrate(scores, synthetic, truth, target_precision={"genus": 0.9, "species": 0.95})
    assert [r.rank for r in by_rank.calibration.ranks] == ["species", "genus"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"target_precision": 1.0}, "target_precision.species"),
        ({"target_precision": "high"}, "target_precision.species"),
        ({"target_precision": {"species": 0.9}, "order": ["species", "genus"]}, "target_precision"),
        ({"target_precision": {"genus": 0.9, "tribe": 0.9}, "order": ["genus"]}, "target_precision"),
        ({"target_precision": {"specis": 0.9}}, "target_precision.specis"),
        ({"delta": 0}, "delta"),
        ({"delta": 1.5}, "delta"),
        ({"calibration_fraction": 1.0}, "calibration_fraction"),
        ({"calibration_fraction": 0.0001}, "calibration_fraction"),
        ({"mode": "both"}, "mode"),
        ({"order": ["genus", "species"]}, "order"),
        ({"grid": [0, 0.5]}, "grid"),
        ({"procedure": "fixed sequence"}, "procedure"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_calibrate_rejects_bad_options_naming_the_field(synthetic, simulated, options, field):
    scores, truth = simulated
    with pytest.raises(InputError) as info:
        calibrate(scores[:500], synthetic, truth[:500], **options)
    assert info.value.field == field


def test_calibrate_rejects_ground_truth_of_another_length(synthetic, simulated):
    scores, truth = simulated
    with pytest.raises(InputError, match=r"^y_true=499"):
        calibrate(scores[:500], synthetic, truth[:499])
