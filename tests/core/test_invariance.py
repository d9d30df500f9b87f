"""Shared invariance tests, run over every public row-wise function of the core.

Whatever the function: permuting the rows permutes the outputs; float32 and float64 inputs give
the same decisions; the chunk size changes nothing; labels given as names or as external ids
give the same results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from taxopost.core import CategoryMap, rank_rollup
from taxopost.core.masking import class_masking
from taxopost.core.rollup import rollup_candidates
from tests.core.reference import MOTHS, MOTHS_LABELS, PlainTaxonomy, assert_same_result, exact_rows, ids_of

THRESHOLDS = {"species": 0.8, "genus": 0.6, "tribe": 0.5, "family": 0.4}
MARGIN = 2e-3  # robust rows keep every aggregate this far from thresholds and from each other


def keep_of(category_map: CategoryMap) -> np.ndarray:
    taxonomy = category_map.taxonomy
    return category_map.admitted_by([taxonomy.index("Nymphalidae"), taxonomy.index("Catocala")])


@dataclass(frozen=True)
class Entry:
    name: str
    call: Callable  # (values, category_map, **kwargs) -> result
    logits: bool
    decisions: tuple[str, ...]  # fields that must be identical across float32 and float64
    values: tuple[str, ...]  # float fields that must agree within float32 precision


ROLLUP_DECISIONS = ("source_class", "source_taxon", "taxon", "accepted_rank", "changed", "evidence_taxon")
ROLLUP_VALUES = ("source_score", "score", "evidence_score")
MASK_DECISIONS = ("source_class", "winner", "changed", "no_kept_mass")
MASK_VALUES = ("scores", "source_score", "score", "removed_mass")


def _rollup(mode: str, logits: bool) -> Entry:
    def call(values, category_map, **kwargs):
        return rank_rollup(values, category_map, thresholds=THRESHOLDS, mode=mode, logits=logits, **kwargs)

    return Entry(f"rank_rollup-{mode}{'-logits' if logits else ''}", call, logits, ROLLUP_DECISIONS, ROLLUP_VALUES)


def _candidates(mode: str) -> Entry:
    def call(values, category_map, **kwargs):
        return rollup_candidates(values, category_map, order=list(THRESHOLDS), mode=mode, **kwargs)

    return Entry(f"rollup_candidates-{mode}", call, False, ROLLUP_DECISIONS, ROLLUP_VALUES)


def _masking(reweight: bool, logits: bool) -> Entry:
    def call(values, category_map, **kwargs):
        return class_masking(values, category_map, keep_of(category_map), reweight=reweight, logits=logits, **kwargs)

    name = f"class_masking-{'reweight' if reweight else 'absolute'}{'-logits' if logits else ''}"
    return Entry(name, call, logits, MASK_DECISIONS, MASK_VALUES)


FUNCTIONS = [
    _rollup("lineage", False),
    _rollup("distribution", False),
    _rollup("lineage", True),
    _rollup("distribution", True),
    _candidates("lineage"),
    _candidates("distribution"),
    _masking(True, False),
    _masking(False, False),
    _masking(True, True),
    _masking(False, True),
]
PARAMS = pytest.mark.parametrize("entry", FUNCTIONS, ids=[entry.name for entry in FUNCTIONS])


def _robust(row: np.ndarray, plain: PlainTaxonomy, keep: np.ndarray) -> bool:
    """No decision of ``row`` is within MARGIN of a threshold or of a tie (float precision can't flip it)."""

    def separated(values) -> bool:
        top = sorted(values, reverse=True)[:2]
        return len(top) < 2 or top[0] - top[1] > MARGIN

    if not separated(row) or not separated(row[keep]):
        return False
    for rank, threshold in THRESHOLDS.items():
        aggregates: dict[str, float] = {}
        for c, label in enumerate(MOTHS_LABELS):
            ancestor = plain.ancestor_at(label, rank)
            if ancestor is not None:
                aggregates[ancestor] = aggregates.get(ancestor, 0.0) + float(row[c])
        if not separated(aggregates.values()):
            return False
        if any(abs(value - threshold) <= MARGIN for value in aggregates.values()):
            return False
    return True


@pytest.fixture(scope="module")
def data(moths_map, moths_plain):
    """Scores (multiples of 1/1024: exact in both precisions, ties included) and logits of robust rows."""
    rng = np.random.default_rng(7)
    scores = exact_rows(rng, 50, moths_map.n_classes)
    keep = keep_of(moths_map)
    robust = [row for row in exact_rows(rng, 1500, moths_map.n_classes) if _robust(row, moths_plain, keep)][:50]
    assert len(robust) == 50
    logits = np.log(np.array(robust) + 1e-6) + 3.0
    return {False: scores, True: logits}


def inputs(entry: Entry, data, dtype=np.float64) -> np.ndarray:
    return data[entry.logits].astype(dtype)


@PARAMS
def test_permuting_rows_permutes_outputs(entry, data, moths_map):
    values = inputs(entry, data)
    perm = np.random.default_rng(0).permutation(values.shape[0])
    base = entry.call(values, moths_map)
    permuted = entry.call(values[perm], moths_map)
    for name in base.__dataclass_fields__:
        x, y = getattr(base, name), getattr(permuted, name)
        if isinstance(x, np.ndarray) and x.ndim >= 1 and x.shape[0] == values.shape[0]:
            np.testing.assert_array_equal(x[perm], y, err_msg=name)
        else:
            assert x == y, name


@PARAMS
def test_float32_and_float64_give_same_decisions(entry, data, moths_map):
    r32 = entry.call(inputs(entry, data, np.float32), moths_map)
    r64 = entry.call(inputs(entry, data, np.float64), moths_map)
    for name in entry.decisions:
        np.testing.assert_array_equal(getattr(r32, name), getattr(r64, name), err_msg=name)
    for name in entry.values:
        x, y = getattr(r32, name), getattr(r64, name)
        if name != "removed_mass":
            assert x.dtype == np.float32 and y.dtype == np.float64, name
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=name)


@PARAMS
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunk_size_changes_nothing(entry, data, moths_map, dtype):
    values = inputs(entry, data, dtype)
    default = entry.call(values, moths_map)
    for chunk_rows in (1, 7):
        assert_same_result(entry.call(values, moths_map, chunk_rows=chunk_rows), default)


@PARAMS
def test_labels_as_names_or_ids_give_same_results(entry, data, moths):
    by_name = CategoryMap(MOTHS_LABELS, moths)
    by_id = CategoryMap(ids_of(MOTHS, MOTHS_LABELS), moths)
    values = inputs(entry, data)
    assert_same_result(entry.call(values, by_id), entry.call(values, by_name))


@PARAMS
def test_one_row_at_a_time_equals_all_rows(entry, data, moths_map):
    values = inputs(entry, data)
    whole = entry.call(values, moths_map)
    for i in (0, 13, values.shape[0] - 1):
        single = entry.call(values[i : i + 1], moths_map)
        for name in whole.__dataclass_fields__:
            x = getattr(whole, name)
            if isinstance(x, np.ndarray):
                np.testing.assert_array_equal(getattr(single, name)[0], x[i], err_msg=name)
