"""The distribution kernel's two paths: exact pruning on heavy classes, and the full scatter.

Each input is first shown to take the intended path (by calling the kernel's pruning step on
it), then the roll-up is checked against the plain reference.
"""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.core import CategoryMap, Taxonomy, TaxonRecord, _kernels, rank_rollup
from taxopost.core.rollup import _plan
from tests.core.reference import PlainTaxonomy, assert_matches_reference

U = 2.0**-14  # below the kernel's 1e-4 "heavy" cut: a light class

SMALL = [
    TaxonRecord("F", "family"),
    TaxonRecord("A", "genus", "F"),
    TaxonRecord("B", "genus", "F"),
    TaxonRecord("C", "genus", "F"),
    TaxonRecord("a1", "species", "A"),
    TaxonRecord("b1", "species", "B"),
    TaxonRecord("b2", "species", "B"),
    TaxonRecord("b3", "species", "B"),
    TaxonRecord("c1", "species", "C"),
]
THRESHOLDS = {"species": 0.9, "genus": 0.4, "family": 0.4}


def pruned_group(category_map: CategoryMap, rank_index: int, row: np.ndarray, order: tuple[str, ...]) -> int:
    """What the kernel's pruning step decides for ``row`` at one rank: a group, or -1 (full path)."""
    plan = _plan(category_map, order)
    heavy = np.flatnonzero(row >= _kernels._HEAVY).astype(np.int64)
    light = float(row[row < _kernels._HEAVY].astype(np.float64).sum())
    scratch = np.zeros(max(int(plan.n_groups.max()), 1), dtype=np.float64)
    touched = np.empty(row.size, dtype=np.int64)
    groups = np.ascontiguousarray(plan.class_group[rank_index])
    return int(_kernels._pruned_argmax(row, heavy, heavy.size, light, groups, scratch, touched))


def small_map(labels: list[str]) -> CategoryMap:
    return CategoryMap(labels, Taxonomy(SMALL))


def check(category_map: CategoryMap, records, scores: np.ndarray, mode: str = "distribution", **kwargs):
    result = rank_rollup(scores, category_map, mode=mode, **kwargs)
    assert_matches_reference(result, scores, category_map, category_map.labels, PlainTaxonomy.of(records))
    return result


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_distribution_peaked_row_takes_pruned_path(dtype):
    category_map = small_map(["a1", "b1", "b2", "b3", "c1"])
    scores = np.array([[0.125, 0.5, 0.25, 0.0625, 0.0625]], dtype=dtype)
    assert pruned_group(category_map, 1, scores[0], ("species", "genus", "family")) >= 0
    result = check(category_map, SMALL, scores, thresholds=THRESHOLDS)
    assert category_map.taxonomy.names[result.taxon[0]] == "B"
    assert result.score[0] == 0.8125


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_distribution_near_tie_decided_by_light_mass_takes_full_path(dtype):
    # Heavy classes alone favour A (8190u vs 8189u); B's two light classes make it 8191u.
    category_map = small_map(["a1", "b1", "b2", "b3", "c1"])
    scores = np.array([[8190 * U, 8189 * U, U, U, 3 * U]], dtype=dtype)
    assert pruned_group(category_map, 1, scores[0], ("species", "genus", "family")) == -1
    result = check(category_map, SMALL, scores, thresholds=THRESHOLDS)
    assert category_map.taxonomy.names[result.taxon[0]] == "B"
    assert result.score[0] == dtype(8191 * U)
    lineage = check(category_map, SMALL, scores, mode="lineage", thresholds=THRESHOLDS)
    assert category_map.taxonomy.names[lineage.taxon[0]] == "A"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("labels", "winner"), [(["b1", "b2", "b3", "a1", "c1"], "B"), (["a1", "b1", "b2", "b3", "c1"], "A")]
)
def test_distribution_exact_tie_hidden_in_light_mass(labels, winner, dtype):
    # A = 8190u (one heavy class); B = 8188u heavy + 2u light = 8190u: a tie only the full path
    # sees. It goes to the genus whose first class comes first in the category map.
    values = {"a1": 8190 * U, "b1": 8188 * U, "b2": U, "b3": U, "c1": 4 * U}
    category_map = small_map(labels)
    scores = np.array([[values[label] for label in labels]], dtype=dtype)
    assert pruned_group(category_map, 1, scores[0], ("species", "genus", "family")) == -1
    result = check(category_map, SMALL, scores, thresholds=THRESHOLDS)
    assert category_map.taxonomy.names[result.taxon[0]] == winner
    assert result.score[0] == dtype(8190 * U)


@pytest.fixture(scope="module")
def wide():
    """One family, 50 genera of 400 species: 20,000 classes, so a row can be all light."""
    records = [TaxonRecord("F", "family")]
    labels = []
    for g in range(50):
        records.append(TaxonRecord(f"G{g}", "genus", "F"))
        for s in range(400):
            records.append(TaxonRecord(f"G{g} s{s}", "species", f"G{g}"))
            labels.append(f"G{g} s{s}")
    # a genus-level class too, so that species is not an identity rank
    labels.append("G7")
    return records, CategoryMap(labels, Taxonomy(records))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_distribution_all_light_row_takes_full_path(wide, dtype):
    records, category_map = wide
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.5, 1.5, size=category_map.n_classes)
    weights[31 * 400 : 32 * 400] *= 1.2  # genus G31 a little heavier than the others
    scores = (weights / weights.sum())[None, :].astype(dtype)
    assert scores.max() < _kernels._HEAVY
    order = ("species", "genus", "family")
    assert pruned_group(category_map, 0, scores[0], order) == -1
    assert pruned_group(category_map, 1, scores[0], order) == -1
    result = check(category_map, records, scores, thresholds={"species": 0.5, "genus": 0.02, "family": 0.5})
    assert category_map.taxonomy.names[result.taxon[0]] == "G31"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_distribution_mixed_rows_agree_with_reference(wide, dtype):
    # Peaked, spread, all-light and near-tie rows interleaved over several parallel work items.
    records, category_map = wide
    rng = np.random.default_rng(1)
    n, c = 150, category_map.n_classes
    scores = np.empty((n, c), dtype=np.float64)
    for i in range(n):
        kind = i % 3
        base = rng.uniform(0.5, 1.5, size=c)
        if kind == 0:  # all light
            scores[i] = base / base.sum()
        elif kind == 1:  # peaked on a few classes in two genera
            scores[i] = base / base.sum() * 0.05
            picks = rng.choice(c - 1, size=4, replace=False)
            scores[i, picks] += rng.dirichlet(np.ones(4)) * 0.95
        else:  # two genera nearly tied, the difference smaller than the light mass
            scores[i] = base / base.sum() * 0.1
            g1, g2 = rng.choice(50, size=2, replace=False)
            scores[i, g1 * 400 + rng.integers(400)] += 0.45
            scores[i, g2 * 400 + rng.integers(400)] += 0.45 + rng.uniform(-2e-3, 2e-3)
    scores /= scores.sum(axis=1, keepdims=True)
    scores = scores.astype(dtype)
    order = ("species", "genus", "family")
    paths = [pruned_group(category_map, 1, scores[i], order) >= 0 for i in range(n)]
    assert any(paths) and not all(paths)
    thresholds = {"species": 0.5, "genus": 0.5, "family": 0.5}
    result = rank_rollup(scores, category_map, thresholds=thresholds, mode="distribution")
    rows = [*range(0, n, 9), 1, 2, 4, 5, 148, 149]
    assert_matches_reference(result, scores, category_map, category_map.labels, PlainTaxonomy.of(records), rows=rows)
