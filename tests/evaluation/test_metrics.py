"""Each metric on a small hand-computed case, then against a plain per-row reference on random data."""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.core import NO_TAXON
from taxopost.errors import InputError
from taxopost.evaluation import (
    accuracy,
    confidence_bins,
    corrections,
    hierarchical_scores,
    is_correct,
    mistake_severity,
    outcome_classes,
    outcome_counts,
    rank_coverage,
    rank_precision,
    summarize,
)
from taxopost.evaluation._checks import common_ancestors, default_order, label_space_ranks
from taxopost.evaluation.metrics import MetricsSummary, OutcomeCounts
from tests.evaluation.conftest import lineage, ref_correct, ref_lca


def ids(taxonomy, *names):
    return np.array([taxonomy.index(name) for name in names])


@pytest.fixture
def case(moths):
    """Six rows: exact, genus roll-up, sibling mistake, family roll-up, cross-family mistake, finer than truth."""
    truth = ids(
        moths, "Vanessa atalanta", "Vanessa cardui", "Vanessa cardui", "Danaus plexippus", "Catocala ilia", "Catocala"
    )
    pred = ids(moths, "Vanessa atalanta", "Vanessa", "Vanessa itea", "Nymphalidae", "Vanessa atalanta", "Catocala ilia")
    return truth, pred


def test_is_correct_counts_ancestors_of_the_truth_and_not_descendants(moths, case):
    truth, pred = case
    assert is_correct(truth, pred, moths).tolist() == [True, True, False, True, False, False]
    assert accuracy(truth, pred, moths) == 0.5


def test_outcome_classes_split_exact_coarser_wrong(moths, case):
    assert outcome_classes(*case, moths).tolist() == [0, 1, 2, 1, 2, 2]


def test_rank_coverage_and_precision_by_final_rank(moths, case):
    truth, pred = case
    assert rank_coverage(pred, moths) == pytest.approx({"species": 4 / 6, "genus": 1 / 6, "family": 1 / 6})
    assert list(rank_coverage(pred, moths)) == ["species", "genus", "family"]  # fine to coarse
    assert rank_precision(truth, pred, moths) == pytest.approx({"species": 1 / 4, "genus": 1.0, "family": 1.0})


def test_rank_metrics_report_listed_ranks_with_zero_or_nan(moths, case):
    truth, pred = case
    coverage = rank_coverage(pred, moths, ranks=["species", "genus", "family", "order"])
    assert coverage["order"] == 0.0
    assert np.isnan(rank_precision(truth, pred, moths, ranks=["species", "order"])["order"])


def test_mistake_severity_counts_lca_ranks_and_mean_height(moths, case):
    severity = mistake_severity(*case, moths)
    # wrong rows: V. cardui vs V. itea (LCA Vanessa, height 1), C. ilia vs V. atalanta (LCA Lepidoptera,
    # height 3), Catocala vs C. ilia (LCA Catocala itself, height 0).
    assert severity.n_wrong == 3
    assert severity.lca_rank == {"genus": 2, "order": 1, "none": 0}
    assert mistake_severity(*case, moths, ranks=["species", "genus"]).lca_rank["species"] == 0
    assert severity.mean_lca_height == pytest.approx(4 / 3)


def test_mistake_severity_without_common_ancestor_uses_a_virtual_root(synthetic):
    taxonomy = synthetic.taxonomy
    truth, pred = ids(taxonomy, "F0G0S0"), ids(taxonomy, "F1G0S0")
    severity = mistake_severity(truth, pred, taxonomy)
    assert severity.lca_rank["none"] == 1
    assert severity.mean_lca_height == 3.0  # species depth 2, virtual root -1


def test_hierarchical_scores_by_hand_with_and_without_the_common_root(moths, case):
    truth, pred = case
    root = [moths.index("Lepidoptera")]
    # Without the root: sum|Â∩A| = 10, sum|Â| = 15, sum|A| = 17.
    precision, recall, f1 = hierarchical_scores(truth, pred, moths, exclude=root)
    assert (precision, recall) == pytest.approx((10 / 15, 10 / 17))
    assert f1 == pytest.approx(0.625)
    # With it every set gains Lepidoptera: 16 / 21 and 16 / 23.
    assert hierarchical_scores(truth, pred, moths)[:2] == pytest.approx((16 / 21, 16 / 23))


def test_common_ancestors_and_label_space_ranks(moths_map, synthetic):
    assert [moths_map.taxonomy.names[t] for t in common_ancestors(moths_map)] == ["Lepidoptera"]
    assert label_space_ranks(moths_map) == ["species", "genus", "family", "order"]
    assert default_order(moths_map) == ["species", "genus", "family"]
    assert common_ancestors(synthetic).size == 0
    assert default_order(synthetic) == ["species", "genus", "family"]


def test_outcome_counts_partition_the_changed_rows(moths):
    truth = ids(
        moths,
        "Vanessa atalanta",
        "Vanessa cardui",
        "Vanessa cardui",
        "Danaus plexippus",
        "Catocala relicta",
        "Vanessa atalanta",
    )
    base = ids(
        moths, "Vanessa atalanta", "Vanessa itea", "Vanessa cardui", "Danaus plexippus", "Catocala", "Danaus plexippus"
    )
    final = ids(moths, "Vanessa atalanta", "Vanessa", "Vanessa itea", "Nymphalidae", "Catocala relicta", "Danaus")
    counts = outcome_counts(truth, final, base, moths)
    assert counts == OutcomeCounts(
        changed=5, corrected=1, regressed=1, generalized=1, specialized=1, still_wrong=1, unchanged=1
    )


def test_corrections_by_hand(moths):
    truth = ids(moths, "Vanessa cardui", "Vanessa cardui", "Danaus plexippus", "Catocala ilia")
    base = ids(moths, "Vanessa itea", "Vanessa cardui", "Danaus plexippus", "Catocala relicta")
    final = ids(moths, "Vanessa", "Vanessa itea", "Danaus plexippus", "Catocala relicta")
    outcome = corrections(truth, final, base, moths)
    assert outcome.baseline_correct.tolist() == [False, True, True, False]
    assert outcome.correct.tolist() == [True, False, True, False]
    assert outcome.corrected.tolist() == [True, False, False, False]
    assert outcome.regressed.tolist() == [False, True, False, False]
    assert outcome.still_correct.tolist() == [False, False, True, False]
    assert outcome.still_wrong.tolist() == [False, False, False, True]


def test_corrections_count_a_missing_taxon_as_wrong_only_when_allowed(moths):
    truth = np.array([moths.index("Vanessa cardui"), NO_TAXON])
    base = np.array([NO_TAXON, moths.index("Vanessa")])
    final = np.array([moths.index("Vanessa"), moths.index("Vanessa")])
    outcome = corrections(truth, final, base, moths, allow_missing=True)
    assert outcome.corrected.tolist() == [True, False] and outcome.still_wrong.tolist() == [False, True]
    with pytest.raises(InputError, match=r"^y_true="):
        corrections(truth, final, base, moths)


def test_confidence_bins_by_hand(moths):
    truth = ids(moths, "Vanessa atalanta", "Vanessa cardui", "Vanessa cardui", "Danaus plexippus")
    base = ids(moths, "Vanessa atalanta", "Vanessa itea", "Vanessa cardui", "Danaus plexippus")
    final = ids(moths, "Vanessa atalanta", "Vanessa", "Vanessa cardui", "Nymphalidae")
    bins = confidence_bins(truth, final, base, np.array([0.95, 0.3, 0.35, 1.0]), moths, n_bins=2)
    assert bins.lower.tolist() == [0.0, 0.5] and bins.upper.tolist() == [0.5, 1.0]
    assert bins.n.tolist() == [2, 2]
    assert bins.accuracy.tolist() == [1.0, 1.0]
    assert bins.baseline_accuracy.tolist() == [0.5, 1.0]
    assert bins.rollup_rate.tolist() == [0.5, 0.5]
    assert bins.changed_rate.tolist() == [0.5, 0.5]


def test_confidence_bins_empty_bin_is_nan(moths):
    truth = ids(moths, "Vanessa atalanta")
    bins = confidence_bins(truth, truth, truth, np.array([0.99]), moths, n_bins=4)
    assert bins.n.tolist() == [0, 0, 0, 1] and np.isnan(bins.accuracy[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_a_plain_per_row_reference(moths, seed):
    rng = np.random.default_rng(seed)
    n = 400
    truth = rng.integers(0, moths.n_taxa, n)
    pred = rng.integers(0, moths.n_taxa, n)
    base = rng.integers(0, moths.n_taxa, n)
    confidence = rng.random(n)
    root = [moths.index("Lepidoptera")]

    correct = [ref_correct(moths, t, p) for t, p in zip(truth, pred, strict=True)]
    assert is_correct(truth, pred, moths).tolist() == correct

    shared = predicted = true = 0
    lca_ranks: dict[str, int] = {}
    heights = []
    for t, p, ok in zip(truth, pred, correct, strict=True):
        a, b = set(lineage(moths, p)) - set(root), set(lineage(moths, t)) - set(root)
        shared, predicted, true = shared + len(a & b), predicted + len(a), true + len(b)
        if not ok:
            lca = ref_lca(moths, p, t)
            rank = moths.rank_of(lca) if lca >= 0 else "none"
            lca_ranks[rank] = lca_ranks.get(rank, 0) + 1
            heights.append(len(lineage(moths, t)) - len(lineage(moths, lca)) if lca >= 0 else len(lineage(moths, t)))
    hp, hr, _ = hierarchical_scores(truth, pred, moths, exclude=root)
    assert (hp, hr) == pytest.approx((shared / predicted, shared / true))
    severity = mistake_severity(truth, pred, moths)
    assert {k: v for k, v in severity.lca_rank.items() if v} == lca_ranks
    assert severity.mean_lca_height == pytest.approx(np.mean(heights))

    by_rank: dict[str, list[bool]] = {}
    for p, ok in zip(pred, correct, strict=True):
        by_rank.setdefault(moths.rank_of(p), []).append(ok)
    assert rank_coverage(pred, moths) == pytest.approx({r: len(v) / n for r, v in by_rank.items()})
    assert rank_precision(truth, pred, moths) == pytest.approx({r: np.mean(v) for r, v in by_rank.items()})

    base_ok = [ref_correct(moths, t, b) for t, b in zip(truth, base, strict=True)]
    expected = dict.fromkeys(("corrected", "regressed", "generalized", "specialized", "still_wrong"), 0)
    for p, b, ok, bok in zip(pred, base, correct, base_ok, strict=True):
        if p == b:
            continue
        if ok and bok:
            coarser = moths.rank_codes[p] < moths.rank_codes[b]
            expected["generalized" if coarser else "specialized"] += 1
        else:
            expected[
                {(True, False): "corrected", (False, True): "regressed", (False, False): "still_wrong"}[ok, bok]
            ] += 1
    counts = outcome_counts(truth, pred, base, moths)
    assert {k: getattr(counts, k) for k in expected} == expected
    assert counts.changed == int((pred != base).sum())

    bins = confidence_bins(truth, pred, base, confidence, moths, n_bins=5)
    for b in range(5):
        rows = [i for i in range(n) if min(int(confidence[i] * 5), 4) == b]
        assert bins.n[b] == len(rows)
        assert bins.accuracy[b] == pytest.approx(np.mean([correct[i] for i in rows]))
        coarser = [moths.rank_codes[pred[i]] < moths.rank_codes[base[i]] for i in rows]
        assert bins.rollup_rate[b] == pytest.approx(np.mean(coarser))


def test_summarize_gathers_the_single_metrics(moths, case):
    truth, pred = case
    base = truth.copy()
    base[1] = moths.index("Vanessa itea")
    confidence = np.linspace(0.05, 0.95, truth.size)
    summary = summarize(truth, pred, base, confidence, moths, exclude=[0], n_bins=4)
    assert isinstance(summary, MetricsSummary)
    assert summary.n == 6 and summary.baseline_accuracy == accuracy(truth, base, moths) == 5 / 6
    assert summary.accuracy == accuracy(truth, pred, moths)
    assert summary.exact_accuracy == pytest.approx(1 / 6)
    assert summary.coverage == rank_coverage(pred, moths) and summary.precision == rank_precision(truth, pred, moths)
    assert summary.outcomes == outcome_counts(truth, pred, base, moths)
    assert summary.mistake_severity == mistake_severity(truth, pred, moths)
    scores = (summary.hierarchical_precision, summary.hierarchical_recall, summary.hierarchical_f1)
    assert scores == hierarchical_scores(truth, pred, moths, exclude=[0])
    bins = confidence_bins(truth, pred, base, confidence, moths, n_bins=4)
    assert np.array_equal(summary.confidence_bins.accuracy, bins.accuracy, equal_nan=True)
    assert summary.confidence_bins.n.tolist() == bins.n.tolist()


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda t: accuracy([0, 1], [0], t), "y_pred"),
        (lambda t: accuracy([0, 99], [0, 1], t), "y_true"),
        (lambda t: accuracy([0, -1], [0, 1], t), "y_true"),
        (lambda t: accuracy([[0]], [0], t), "y_true"),
        (lambda t: accuracy([0.5], [0], t), "y_true"),
        (lambda t: outcome_counts([0], [0], [0, 1], t), "y_baseline"),
        (lambda t: confidence_bins([0], [0], [0], [0.5, 0.5], t), "confidence"),
        (lambda t: confidence_bins([0], [0], [0], [0.5], t, n_bins=0), "n_bins"),
        (lambda t: summarize([0], [0], [0], [0.5], t, n_bins=0), "n_bins"),
    ],
)
def test_every_metric_rejects_bad_input_naming_the_field(moths, call, field):
    with pytest.raises(InputError, match=rf"^{field}="):
        call(moths)


@pytest.mark.parametrize(
    ("n_bins", "message"),
    [(0, "must be a positive integer"), (True, "must be a positive integer"), (1001, "at most 1000 bins")],
)
def test_the_number_of_confidence_bins_is_bounded(moths, n_bins, message):
    """100,000 bins once took minutes and gigabytes for a report no finer than 1,000 can show."""
    truth = np.array([moths.index("Vanessa atalanta")])
    with pytest.raises(InputError, match=f"n_bins={n_bins!r}: {message}"):
        confidence_bins(truth, truth, truth, np.array([0.5]), moths, n_bins=n_bins)
    assert confidence_bins(truth, truth, truth, np.array([0.5]), moths, n_bins=1000).n.sum() == 1
