"""Rank roll-up: one small test per rule of docs/core.md."""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.core import DEFAULT_THRESHOLDS, NO_TAXON, CategoryMap, Taxonomy, TaxonRecord, rank_rollup
from taxopost.core.rollup import apply_thresholds, rollup_candidates
from taxopost.core.vectors import softmax
from taxopost.errors import InputError
from tests.core.reference import (
    MOTHS_LABELS,
    VANESSA,
    VANESSA_LABELS,
    assert_matches_reference,
    assert_same_result,
    exact_rows,
)

MODES = ["lineage", "distribution"]
DTYPES = [np.float32, np.float64]


def names(category_map: CategoryMap, taxa: np.ndarray) -> list[str | None]:
    return [category_map.taxonomy.names[t] if t != NO_TAXON else None for t in taxa]


def row(category_map: CategoryMap, dtype=np.float64, **scores: float) -> np.ndarray:
    """One score row given by label (underscores for spaces); unnamed classes score 0."""
    values = np.zeros((1, category_map.n_classes), dtype=dtype)
    for label, score in scores.items():
        values[0, category_map.labels.index(label.replace("_", " "))] = score
    return values


# -- the rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_antenna_vanessa_case(vanessa_map, mode, dtype):
    # Vanessa atalanta/cardui/itea at 0.5/0.2/0.1: no species reaches 0.8, genus Vanessa has 0.8.
    scores = np.array([[0.5, 0.2, 0.1, 0.2]], dtype=dtype)
    result = rank_rollup(scores, vanessa_map, mode=mode)
    assert result.order == ("species", "genus", "family")
    assert names(vanessa_map, result.source_taxon) == ["Vanessa atalanta"]
    assert names(vanessa_map, result.taxon) == ["Vanessa"]
    assert result.accepted_rank.tolist() == [1]
    assert result.changed.tolist() == [True]
    np.testing.assert_allclose(result.score, [0.8], rtol=1e-6)
    assert names(vanessa_map, result.evidence_taxon[0]) == ["Vanessa atalanta", "Vanessa", None]
    np.testing.assert_allclose(result.evidence_score[0, :2], [0.5, 0.8], rtol=1e-6)
    assert np.isnan(result.evidence_score[0, 2])


@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_confident_species_is_unchanged(vanessa_map, mode):
    result = rank_rollup(row(vanessa_map, Vanessa_cardui=0.85, Danaus_plexippus=0.15), vanessa_map, mode=mode)
    assert names(vanessa_map, result.taxon) == ["Vanessa cardui"]
    assert result.accepted_rank.tolist() == [0]
    assert result.changed.tolist() == [False]
    assert result.score.tolist() == [0.85]


@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_no_rank_clears_keeps_source(vanessa_map, mode):
    scores = row(vanessa_map, Vanessa_atalanta=0.5, Danaus_plexippus=0.5)
    result = rank_rollup(scores, vanessa_map, thresholds={"species": 0.9, "genus": 0.9}, mode=mode)
    assert names(vanessa_map, result.taxon) == ["Vanessa atalanta"]
    assert result.accepted_rank.tolist() == [-1]
    assert result.changed.tolist() == [False]
    assert result.score.tolist() == [0.5]
    assert result.source_score.tolist() == [0.5]


def test_rank_rollup_off_lineage_case_modes_differ():
    # Vanessa atalanta wins the argmax but genus Vanessa is weak; genus Danaus holds 0.625.
    taxonomy = Taxonomy([*VANESSA, TaxonRecord("Danaus gilippus", "species", "Danaus")])
    labels = ["Vanessa atalanta", "Vanessa cardui", "Danaus plexippus", "Danaus gilippus"]
    category_map = CategoryMap(labels, taxonomy)
    scores = np.array([[11 / 32, 1 / 32, 10 / 32, 10 / 32]])
    lineage = rank_rollup(scores, category_map, mode="lineage")
    distribution = rank_rollup(scores, category_map, mode="distribution")
    # lineage: atalanta 0.34 < 0.8, Vanessa 0.375 < 0.6, Nymphalidae 1.0 >= 0.4
    assert names(category_map, lineage.taxon) == ["Nymphalidae"]
    assert lineage.accepted_rank.tolist() == [2]
    assert lineage.score.tolist() == [1.0]
    assert names(category_map, lineage.evidence_taxon[0]) == ["Vanessa atalanta", "Vanessa", "Nymphalidae"]
    assert lineage.evidence_score[0].tolist() == [11 / 32, 12 / 32, 1.0]
    # distribution: the best genus is Danaus at 0.625 >= 0.6, off the source's lineage
    assert names(category_map, distribution.taxon) == ["Danaus"]
    assert distribution.accepted_rank.tolist() == [1]
    assert distribution.score.tolist() == [0.625]
    assert names(category_map, distribution.source_taxon) == ["Vanessa atalanta"]
    assert distribution.changed.tolist() == [True]


@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_genus_level_class_counts_at_genus_not_species(moths_map, mode):
    # The genus-level class "Catocala" scores 0.5: it adds to genus Catocala and above, to no species.
    scores = row(moths_map, Catocala=0.5, Catocala_ilia=0.25, Catocala_relicta=0.125, Vanessa_atalanta=0.125)
    result = rank_rollup(scores, moths_map, mode=mode)
    assert names(moths_map, result.source_taxon) == ["Catocala"]
    assert names(moths_map, result.taxon) == ["Catocala"]
    assert result.accepted_rank.tolist() == [1]
    assert result.score.tolist() == [0.875]
    assert result.changed.tolist() == [False]  # accepted the source's own taxon: nothing changes
    if mode == "lineage":  # the source has no species: no candidate there
        assert result.evidence_taxon[0, 0] == NO_TAXON
        assert np.isnan(result.evidence_score[0, 0])
    else:  # the best species is Catocala ilia with its own 0.25 only
        assert names(moths_map, result.evidence_taxon[0, :1]) == ["Catocala ilia"]
        assert result.evidence_score[0, 0] == 0.25


@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_family_level_class(moths_map, mode):
    scores = row(moths_map, Geometridae=0.5, Catocala_ilia=0.25, Vanessa_atalanta=0.25)
    result = rank_rollup(scores, moths_map, mode=mode)
    assert names(moths_map, result.taxon) == ["Geometridae"]
    assert result.accepted_rank.tolist() == [2]
    assert result.score.tolist() == [0.5]
    assert result.changed.tolist() == [False]


@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_skipped_rank_contributes_nothing(moths_map, mode):
    # Danaus has no tribe: its species add nothing to any tribe, and a Danaus source has no
    # tribe candidate. Nymphalini (tribe of Vanessa) holds only Vanessa's 0.375.
    scores = row(
        moths_map,
        Danaus_plexippus=0.375,
        Danaus_gilippus=0.25,
        Vanessa_atalanta=0.125,
        Vanessa_cardui=0.125,
        Vanessa_itea=0.125,
    )
    thresholds = {"species": 0.9, "tribe": 0.375, "family": 0.9}
    result = rank_rollup(scores, moths_map, thresholds=thresholds, mode=mode)
    assert result.order == ("species", "tribe", "family")
    if mode == "lineage":
        assert result.evidence_taxon[0, 1] == NO_TAXON
        assert np.isnan(result.evidence_score[0, 1])
        assert names(moths_map, result.taxon) == ["Nymphalidae"]
        assert result.score.tolist() == [1.0]
    else:
        assert names(moths_map, result.taxon) == ["Nymphalini"]
        assert result.score.tolist() == [0.375]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_threshold_is_inclusive(vanessa_map, mode, dtype):
    scores = np.array([[0.5, 0.25, 0.0, 0.25]], dtype=dtype)  # genus Vanessa: exactly 0.75
    at = rank_rollup(scores, vanessa_map, thresholds={"species": 0.8, "genus": 0.75}, mode=mode)
    assert names(vanessa_map, at.taxon) == ["Vanessa"]
    assert at.score.tolist() == [0.75]
    above = float(np.nextafter(np.float32(0.75), np.float32(1.0)))  # above 0.75 in both precisions
    missed = rank_rollup(scores, vanessa_map, thresholds={"species": 0.8, "genus": above}, mode=mode)
    assert missed.accepted_rank.tolist() == [-1]
    assert names(vanessa_map, missed.taxon) == ["Vanessa atalanta"]


@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_float32_compares_in_float32(vanessa_map, mode):
    # In float64, float32(0.5) + float32(0.25) + float32(0.05) is just below float32(0.8);
    # rounded to float32 the sum is 0.8 and clears the threshold, as a float32 user expects.
    scores = np.array([[0.5, 0.25, 0.05, 0.2]], dtype=np.float32)
    assert float(scores[0, :3].astype(np.float64).sum()) < float(np.float32(0.8))
    result = rank_rollup(scores, vanessa_map, thresholds={"species": 0.9, "genus": 0.8}, mode=mode)
    assert names(vanessa_map, result.taxon) == ["Vanessa"]
    assert result.score.dtype == np.float32
    assert result.score[0] == np.float32(0.8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rank_rollup_distribution_tie_goes_to_first_class(vanessa, dtype):
    thresholds = {"species": 0.9, "genus": 0.5}
    # Danaus's class comes first: Danaus 0.5 ties Vanessa 0.5 and wins.
    first = CategoryMap(["Danaus plexippus", "Vanessa atalanta", "Vanessa cardui"], vanessa)
    result = rank_rollup(np.array([[0.5, 0.25, 0.25]], dtype=dtype), first, thresholds=thresholds, mode="distribution")
    assert names(first, result.taxon) == ["Danaus"]
    # Vanessa's first class comes first, though the argmax class is Danaus plexippus.
    second = CategoryMap(["Vanessa atalanta", "Danaus plexippus", "Vanessa cardui"], vanessa)
    scores = np.array([[0.125, 0.5, 0.375]], dtype=dtype)
    result = rank_rollup(scores, second, thresholds=thresholds, mode="distribution")
    assert names(second, result.source_taxon) == ["Danaus plexippus"]
    assert names(second, result.taxon) == ["Vanessa"]


@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_species_tie_goes_to_first_class(vanessa_map, mode):
    scores = row(vanessa_map, Vanessa_cardui=0.5, Danaus_plexippus=0.5)
    result = rank_rollup(scores, vanessa_map, thresholds={"species": 0.5}, mode=mode)
    assert names(vanessa_map, result.source_taxon) == ["Vanessa cardui"]
    assert names(vanessa_map, result.taxon) == ["Vanessa cardui"]
    assert result.source_class.tolist() == [1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_logits_input(vanessa_map, mode, dtype):
    probabilities = np.array([[0.5, 0.2, 0.1, 0.2], [0.9, 0.04, 0.03, 0.03]])
    logits = (np.log(probabilities) + 7.0).astype(dtype)
    from_logits = rank_rollup(logits, vanessa_map, mode=mode, logits=True)
    from_scores = rank_rollup(softmax(logits), vanessa_map, mode=mode)
    assert_same_result(from_logits, from_scores)
    assert names(vanessa_map, from_logits.taxon) == ["Vanessa", "Vanessa atalanta"]
    np.testing.assert_allclose(from_logits.score, [0.8, 0.9], rtol=1e-5)


@pytest.mark.parametrize("logits", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rank_rollup_keeps_input_dtype(vanessa_map, dtype, logits):
    scores = np.array([[0.5, 0.2, 0.1, 0.2]], dtype=dtype)
    result = rank_rollup(np.log(scores) if logits else scores, vanessa_map, logits=logits)
    assert result.score.dtype == dtype
    assert result.source_score.dtype == dtype
    assert result.evidence_score.dtype == dtype


def test_rank_rollup_other_numbers_become_float64(vanessa_map):
    result = rank_rollup(np.array([[1, 0, 0, 0]], dtype=np.int64), vanessa_map)
    assert result.score.dtype == np.float64
    assert names(vanessa_map, result.taxon) == ["Vanessa atalanta"]


@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_unresolved_classes_excluded(vanessa, mode):
    # "Mystery moth" resolves to nothing: it is never the source and adds to no aggregate.
    category_map = CategoryMap([*VANESSA_LABELS, "Mystery moth"], vanessa, on_unresolved="exclude")
    scores = np.array([[0.25, 0.125, 0.0, 0.125, 0.5]])
    result = rank_rollup(scores, category_map, thresholds={"species": 0.8, "genus": 0.6, "family": 0.5}, mode=mode)
    assert result.source_class.tolist() == [0]
    assert names(category_map, result.source_taxon) == ["Vanessa atalanta"]
    assert names(category_map, result.taxon) == ["Nymphalidae"]
    assert result.score.tolist() == [0.5]
    assert result.evidence_score[0].tolist() == [0.25, 0.375, 0.5]


def test_rank_rollup_default_thresholds_and_order(vanessa_map):
    result = rank_rollup(row(vanessa_map, Vanessa_atalanta=1.0), vanessa_map)
    assert result.order == ("species", "genus", "family")
    assert result.thresholds == DEFAULT_THRESHOLDS
    assert result.mode == "lineage"


@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_order_may_skip_a_rank(vanessa_map, mode):
    # Without species in the order, a confident species still generalises to its genus.
    scores = row(vanessa_map, Vanessa_atalanta=0.9, Danaus_plexippus=0.1)
    result = rank_rollup(scores, vanessa_map, thresholds={"genus": 0.6, "family": 0.4}, mode=mode)
    assert result.order == ("genus", "family")
    assert names(vanessa_map, result.taxon) == ["Vanessa"]
    assert result.score.tolist() == [0.9]


@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_evidence_stops_at_accepted_rank(vanessa_map, mode):
    result = rank_rollup(row(vanessa_map, Vanessa_atalanta=0.85, Danaus_plexippus=0.15), vanessa_map, mode=mode)
    assert result.evidence_taxon[0, 1:].tolist() == [NO_TAXON, NO_TAXON]
    assert np.isnan(result.evidence_score[0, 1:]).all()


def test_rank_rollup_partial_rows_are_lower_bounds(vanessa_map):
    scores = row(vanessa_map, Vanessa_atalanta=0.25, Vanessa_cardui=0.25)
    result = rank_rollup(scores, vanessa_map, thresholds={"species": 0.8, "genus": 0.5})
    assert names(vanessa_map, result.taxon) == ["Vanessa"]
    assert result.score.tolist() == [0.5]
    # the missing half belongs to no taxon: it never helps a rank clear its threshold
    assert not rank_rollup(scores, vanessa_map, thresholds={"species": 0.8, "genus": 0.6}).changed.any()


@pytest.mark.parametrize(
    ("factor", "hint"), [(3, "logits\\? use --logits"), (200, "scores in percent\\? divide them by 100")]
)
def test_rank_rollup_refuses_a_row_above_one_with_a_hint(vanessa_map, factor, hint):
    scores = row(vanessa_map, Vanessa_atalanta=0.25, Vanessa_cardui=0.25) * factor
    message = rf"scores\[0\]='sum={0.5 * factor:g}': probabilities must sum to at most 1 \(\+0.001\) \({hint}\)"
    with pytest.raises(InputError, match=message):
        rank_rollup(scores, vanessa_map)


@pytest.mark.parametrize("function", ["rank_rollup", "rollup_candidates"])
def test_ranks_the_taxonomy_lacks_are_refused_naming_its_ranks(vanessa_map, function):
    scores = row(vanessa_map, Vanessa_atalanta=1.0)
    message = r"=\['tribe'\]: the taxonomy has no taxon at these ranks; its ranks: order, family, genus, species"
    with pytest.raises(InputError, match=message):
        if function == "rank_rollup":
            rank_rollup(scores, vanessa_map, thresholds={"species": 0.8, "tribe": 0.5})
        else:
            rollup_candidates(scores, vanessa_map, order=("species", "tribe"))


def test_rank_rollup_refuses_negative_scores_suggesting_logits(vanessa_map):
    scores = row(vanessa_map, Vanessa_atalanta=1.5, Vanessa_cardui=-0.5)
    with pytest.raises(InputError, match=r"scores\[0, 1\]=-0.5: probabilities must be >= 0 \(logits\? use --logits\)"):
        rank_rollup(scores, vanessa_map)


def test_rank_rollup_no_rows(vanessa_map):
    result = rank_rollup(np.empty((0, 4), dtype=np.float32), vanessa_map)
    assert len(result) == 0
    assert result.evidence_score.shape == (0, 3)
    assert result.score.dtype == np.float32


def test_rank_rollup_reports_progress(vanessa_map):
    scores = exact_rows(np.random.default_rng(0), 10, 4)
    done: list[int] = []
    rank_rollup(scores, vanessa_map, chunk_rows=4, progress=done.append)
    assert done == [4, 4, 2]


@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_accepts_lists(vanessa_map, mode):
    as_list = rank_rollup([[0.5, 0.2, 0.1, 0.2]], vanessa_map, mode=mode)
    as_array = rank_rollup(np.array([[0.5, 0.2, 0.1, 0.2]]), vanessa_map, mode=mode)
    assert_same_result(as_list, as_array)


# -- candidates once, any thresholds later ------------------------------------------------------

THRESHOLD_SETS = [
    {"species": 0.8, "genus": 0.6, "tribe": 0.5, "family": 0.4},
    {"species": 0.5, "genus": 0.5, "tribe": 0.5, "family": 0.5},
    {"species": 1.0, "genus": 0.9, "tribe": 0.25, "family": 0.125},
    {"species": 0.3, "genus": 1.0, "tribe": 1.0, "family": 1.0},
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_apply_thresholds_equals_rank_rollup(moths_map, mode, dtype):
    scores = exact_rows(np.random.default_rng(3), 60, moths_map.n_classes).astype(dtype)
    order = ["species", "genus", "tribe", "family"]
    candidates = rollup_candidates(scores, moths_map, order=order, mode=mode)
    assert candidates.accepted_rank.tolist() == [-1] * 60
    # every rank examined: NaN exactly where there is no candidate (lineage: the source is coarser)
    np.testing.assert_array_equal(np.isnan(candidates.evidence_score), candidates.evidence_taxon == NO_TAXON)
    if mode == "distribution":
        assert (candidates.evidence_taxon != NO_TAXON).all()
    for thresholds in THRESHOLD_SETS:
        expected = rank_rollup(scores, moths_map, thresholds=thresholds, mode=mode)
        assert_same_result(apply_thresholds(candidates, thresholds), expected)


@pytest.mark.parametrize("mode", MODES)
def test_rollup_candidates_match_reference(moths_map, moths_plain, mode):
    scores = exact_rows(np.random.default_rng(4), 40, moths_map.n_classes)
    candidates = rollup_candidates(scores, moths_map, order=["species", "genus", "tribe", "family"], mode=mode)
    assert_matches_reference(candidates, scores, moths_map, MOTHS_LABELS, moths_plain)


def test_apply_thresholds_needs_every_rank(moths_map):
    candidates = rollup_candidates(np.eye(moths_map.n_classes), moths_map, order=["species", "genus"])
    with pytest.raises(InputError, match=r"order=\['species', 'genus'\]: no threshold for genus"):
        apply_thresholds(candidates, {"species": 0.8})


# -- against the reference, on the small taxonomies ---------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_rank_rollup_matches_reference_on_moths(moths_map, moths_plain, mode, dtype):
    scores = exact_rows(np.random.default_rng(5), 80, moths_map.n_classes).astype(dtype)
    for thresholds in THRESHOLD_SETS:
        result = rank_rollup(scores, moths_map, thresholds=thresholds, mode=mode)
        assert_matches_reference(result, scores, moths_map, MOTHS_LABELS, moths_plain)


def test_reference_walks_lineages_like_the_taxonomy(moths, moths_plain):
    # the plain reference and the core index agree on every ancestor, skipped ranks included
    for rank in ("species", "genus", "tribe", "subfamily", "family", "order"):
        ancestors = moths.ancestor_at(rank)
        for t, name in enumerate(moths.names):
            expected = moths_plain.ancestor_at(name, rank)
            assert (moths.names[ancestors[t]] if ancestors[t] != NO_TAXON else None) == expected
