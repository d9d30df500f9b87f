"""Property-based tests: random taxonomies and random outputs against the plain reference.

Taxonomies are random trees with random ranks (so lineages skip ranks), classes at any rank
(genus- and family-level classes included) in a random class order, sometimes an unresolved
class. Score rows are Dirichlet-like, peaked, or exact multiples of 1/8 or 1/64 (so exact ties and
aggregates exactly at a threshold happen); float32 and float64. The reference compares in the
core's precision, so results must agree exactly, ties included.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taxopost.core import NO_TAXON, CategoryMap, Taxonomy, TaxonRecord, rank_rollup
from taxopost.core.masking import class_masking
from taxopost.core.rollup import apply_thresholds, rollup_candidates
from tests.core.reference import PlainTaxonomy, assert_matches_reference, assert_same_result, reference_softmax_kept

RANK_POOL = ["order", "superfamily", "family", "subfamily", "tribe", "genus", "species"]
COARSE_TO_FINE = ["kingdom", *RANK_POOL]
MAX_TAXA = 40
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def taxonomies(draw):
    """Random records forming a forest: each child's rank is strictly finer, often skipping ranks."""
    records: list[TaxonRecord] = []
    stack: list[tuple[str, int]] = []
    for _ in range(draw(st.integers(1, 3))):
        rank = draw(st.integers(0, len(RANK_POOL) - 2))
        name = f"t{len(records)}"
        records.append(TaxonRecord(name, RANK_POOL[rank]))
        stack.append((name, rank))
    while stack and len(records) < MAX_TAXA:
        parent, parent_rank = stack.pop(0)
        if parent_rank == len(RANK_POOL) - 1:
            continue
        for _ in range(draw(st.integers(0, 4))):
            if len(records) >= MAX_TAXA:
                break
            rank = draw(st.integers(parent_rank + 1, len(RANK_POOL) - 1))
            name = f"t{len(records)}"
            records.append(TaxonRecord(name, RANK_POOL[rank], parent, external_ids=(str(1000 + len(records)),)))
            stack.append((name, rank))
    return records


@st.composite
def problems(draw, *, with_thresholds: bool = True):
    records = draw(taxonomies())
    names = [record.name for record in records]
    classes = draw(st.lists(st.sampled_from(names), min_size=1, max_size=15, unique=True))
    unresolved = draw(st.booleans())
    labels = list(classes)
    if unresolved:
        labels.insert(draw(st.integers(0, len(labels))), "no such taxon")
    # ranks the taxonomy has (one it lacks is refused: test_rollup.py)
    present = sorted({record.rank for record in records}, key=COARSE_TO_FINE.index)
    order = draw(st.lists(st.sampled_from(present), min_size=1, max_size=4, unique=True))
    order.sort(key=COARSE_TO_FINE.index, reverse=True)
    threshold = st.one_of(st.sampled_from([0.125, 0.25, 0.5, 0.75, 1.0]), st.floats(0.01, 1.0))
    thresholds = {rank: draw(threshold) for rank in order} if with_thresholds else None
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    style = draw(st.sampled_from(["dirichlet", "peaked", "exact", "sparse"]))
    n_rows = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    scores = _rows(np.random.default_rng(seed), n_rows, len(labels), style).astype(dtype)
    return records, labels, order, thresholds, scores


def _rows(rng: np.random.Generator, n: int, c: int, style: str) -> np.ndarray:
    if style == "exact":  # multiples of 1/8 or 1/64: exact sums, ties and exact threshold hits
        unit = rng.choice([8, 64])
        counts = rng.multinomial(unit, rng.dirichlet(np.ones(c)), size=n)
        return counts / float(unit)
    if style == "sparse":  # most classes tiny (below the kernel's 1e-4 cut)
        rows = rng.dirichlet(np.full(c, 0.05), size=n)
    else:
        rows = rng.dirichlet(np.full(c, rng.uniform(0.1, 3.0)), size=n)
    if style == "peaked":
        rows[np.arange(n), rng.integers(c, size=n)] += rng.uniform(1.0, 20.0, size=n)
    return rows / rows.sum(axis=1, keepdims=True)


def build(records, labels):
    taxonomy = Taxonomy(records)
    category_map = CategoryMap(labels, taxonomy, on_unresolved="exclude")
    class_names = [label if label in taxonomy.names else None for label in labels]
    return category_map, class_names, PlainTaxonomy.of(records)


@PROPERTY
@given(problem=problems(), mode=st.sampled_from(["lineage", "distribution"]))
def test_rank_rollup_agrees_with_reference(problem, mode):
    records, labels, order, thresholds, scores = problem
    category_map, class_names, plain = build(records, labels)
    result = rank_rollup(scores, category_map, thresholds=thresholds, order=order, mode=mode)
    assert_matches_reference(result, scores, category_map, class_names, plain)


@PROPERTY
@given(problem=problems())
def test_lineage_mode_only_returns_source_or_ancestor(problem):
    records, labels, order, thresholds, scores = problem
    category_map, _, _ = build(records, labels)
    result = rank_rollup(scores, category_map, thresholds=thresholds, order=order, mode="lineage")
    assert category_map.taxonomy.is_ancestor_or_self(result.taxon, result.source_taxon).all()
    assert (result.taxon != NO_TAXON).all()


@PROPERTY
@given(problem=problems(), mode=st.sampled_from(["lineage", "distribution"]))
def test_returned_score_is_aggregate_clearing_its_threshold(problem, mode):
    records, labels, order, thresholds, scores = problem
    category_map, class_names, plain = build(records, labels)
    result = rank_rollup(scores, category_map, thresholds=thresholds, order=order, mode=mode)
    dtype = scores.dtype.type
    for i in np.flatnonzero(result.accepted_rank >= 0):
        taxon = category_map.taxonomy.names[result.taxon[i]]
        rank = order[result.accepted_rank[i]]
        assert plain.rank[taxon] == rank
        members = [c for c, name in enumerate(class_names) if name is not None and taxon in plain.lineage(name)]
        assert result.score[i] == dtype(sum(float(scores[i, c]) for c in members))
        assert result.score[i] >= dtype(thresholds[rank])
    unaccepted = result.accepted_rank < 0
    np.testing.assert_array_equal(result.taxon[unaccepted], result.source_taxon[unaccepted])
    np.testing.assert_array_equal(result.score[unaccepted], result.source_score[unaccepted])


@PROPERTY
@given(problem=problems(), mode=st.sampled_from(["lineage", "distribution"]))
def test_no_finer_rank_had_an_acceptable_candidate(problem, mode):
    records, labels, order, thresholds, scores = problem
    category_map, class_names, plain = build(records, labels)
    result = rank_rollup(scores, category_map, thresholds=thresholds, order=order, mode=mode)
    dtype = scores.dtype.type
    for i in range(scores.shape[0]):
        accepted = result.accepted_rank[i]
        source = category_map.taxonomy.names[result.source_taxon[i]]
        for r in range(len(order) if accepted < 0 else accepted):
            rank = order[r]
            aggregates: dict[str, float] = {}
            for c, name in enumerate(class_names):
                ancestor = plain.ancestor_at(name, rank) if name is not None else None
                if ancestor is not None:
                    aggregates[ancestor] = aggregates.get(ancestor, 0.0) + float(scores[i, c])
            if mode == "lineage":
                candidates = [plain.ancestor_at(source, rank)]
                candidates = [t for t in candidates if t is not None]
            else:  # no taxon of the rank at all could have been accepted
                candidates = list(aggregates)
            assert all(dtype(aggregates[t]) < dtype(thresholds[rank]) for t in candidates)


@PROPERTY
@given(problem=problems(with_thresholds=False), mode=st.sampled_from(["lineage", "distribution"]), data=st.data())
def test_candidates_then_thresholds_equal_rank_rollup(problem, mode, data):
    records, labels, order, _, scores = problem
    category_map, _, _ = build(records, labels)
    candidates = rollup_candidates(scores, category_map, order=order, mode=mode)
    threshold = st.sampled_from([0.125, 0.25, 0.5, 0.75, 1.0]) | st.floats(0.01, 1.0)
    for _ in range(3):
        thresholds = {rank: data.draw(threshold) for rank in order}
        expected = rank_rollup(scores, category_map, thresholds=thresholds, order=order, mode=mode)
        assert_same_result(apply_thresholds(candidates, thresholds), expected)


@PROPERTY
@given(problem=problems(with_thresholds=False), data=st.data())
def test_masking_zeroes_excluded_and_softmaxes_kept_logits(problem, data):
    records, labels, _, _, scores = problem
    category_map, _, _ = build(records, labels)
    n_classes = category_map.n_classes
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=n_classes, max_size=n_classes)))
    keep &= category_map.resolved
    if not keep.any():
        keep[np.flatnonzero(category_map.resolved)[0]] = True
    dtype = scores.dtype
    scale = data.draw(st.floats(0.1, 30.0))
    logits = (np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).normal(size=scores.shape) * scale).astype(
        dtype
    )
    result = class_masking(logits, category_map, keep, logits=True)
    assert result.scores.dtype == dtype
    assert (result.scores[:, ~keep] == 0).all()
    expected = reference_softmax_kept(logits, keep)
    rtol = 1e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(result.scores, expected, rtol=rtol, atol=1e-30)
    kept_logits = np.where(keep, logits, -np.inf)
    np.testing.assert_array_equal(result.winner, kept_logits.argmax(axis=1))
    # and from scores: excluded get 0, the kept ones are renormalised
    from_scores = class_masking(scores, category_map, keep)
    assert (from_scores.scores[:, ~keep] == 0).all()
    kept_mass = (scores * keep).sum(axis=1, dtype=np.float64)
    has_mass = kept_mass > 0
    expected = (scores * keep)[has_mass] / kept_mass[has_mass, None]
    # float32 subnormals (below 1.2e-38) cannot hold a relative precision: an absolute floor
    np.testing.assert_allclose(from_scores.scores[has_mass], expected, rtol=1e-5, atol=1e-37)
    np.testing.assert_array_equal(from_scores.no_kept_mass, ~has_mass)
