"""Every bad-input case the design names (docs/core.md), at every public entry point of the core.

Each case must raise :class:`InputError` whose message names the field and quotes the value
(``field=value: reason``); the table gives the field and the start of the message.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from taxopost.core import CategoryMap, Taxonomy, TaxonRecord, rank_rollup
from taxopost.core.masking import class_masking
from taxopost.core.ranks import check_rollup_order, check_thresholds, parse_rank, rank_from_level
from taxopost.core.rollup import apply_thresholds, rollup_candidates
from taxopost.core.size_filter import small_size_filter
from taxopost.errors import InputError
from tests.core.reference import MOTHS, VANESSA, VANESSA_LABELS

TAXONOMY = Taxonomy(VANESSA)
CMAP = CategoryMap(VANESSA_LABELS, TAXONOMY)
GOOD = np.full((3, 4), 0.25)
KEEP = np.array([True, False, True, False])
MOTHS_TAXONOMY = Taxonomy(MOTHS)


def with_value(row: int, col: int, value: float, base: np.ndarray = GOOD) -> np.ndarray:
    bad = base.copy()
    bad[row, col] = value
    return bad


def logits_with(row: int, col: int, value: float) -> np.ndarray:
    return with_value(row, col, value, np.zeros((3, 4)))


def rollup(values, **kwargs):
    return lambda: rank_rollup(values, CMAP, **kwargs)


def mask(values, **kwargs):
    return lambda: class_masking(values, CMAP, KEEP, **kwargs)


def taxonomy(*records):
    return lambda: Taxonomy(records)


def lineages(*rows, ranks=("species", "genus", "family"), source=None):
    return lambda: Taxonomy.from_lineages(rows, list(ranks), source=source)


def sizes(boxes, image_sizes, **kwargs):
    return lambda: small_size_filter(boxes, image_sizes, **kwargs)


SCORE_CASES = {
    # NaN / inf / negative scores, at every entry point that takes a matrix
    "rollup-nan": (rollup(with_value(1, 2, np.nan)), "scores[1, 2]", "scores[1, 2]=nan: values must be finite"),
    "rollup-inf": (rollup(with_value(0, 1, np.inf)), "scores[0, 1]", "scores[0, 1]=inf: values must be finite"),
    "rollup-negative": (
        rollup(with_value(0, 0, 0.6, with_value(0, 1, -0.1))),
        "scores[0, 1]",
        "scores[0, 1]=-0.1: probabilities must be >= 0",
    ),
    "rollup-logits-nan": (
        rollup(logits_with(2, 0, np.nan), logits=True),
        "logits[2, 0]",
        "logits[2, 0]=nan: values must be finite",
    ),
    "rollup-logits-inf": (
        rollup(logits_with(1, 3, -np.inf), logits=True),
        "logits[1, 3]",
        "logits[1, 3]=-inf: values must be finite",
    ),
    "rollup-row-index-is-global": (
        rollup(with_value(2, 3, np.nan), chunk_rows=2),
        "scores[2, 3]",
        "scores[2, 3]=nan",
    ),
    "candidates-nan": (
        lambda: rollup_candidates(with_value(0, 0, np.nan), CMAP),
        "scores[0, 0]",
        "scores[0, 0]=nan: values must be finite",
    ),
    "mask-nan": (mask(with_value(1, 1, np.nan)), "scores[1, 1]", "scores[1, 1]=nan: values must be finite"),
    "mask-negative": (
        mask(with_value(1, 0, 0.5, with_value(1, 1, -0.25))),
        "scores[1, 1]",
        "scores[1, 1]=-0.25: probabilities must be >= 0",
    ),
    "mask-logits-inf": (
        mask(logits_with(0, 2, np.inf), logits=True),
        "logits[0, 2]",
        "logits[0, 2]=inf: values must be finite",
    ),
    # vectors whose length differs from the category map
    "rollup-length": (
        rollup(np.full((2, 3), 1 / 3)),
        "scores",
        "scores=3: vectors have 3 values but the category map has 4 classes",
    ),
    "mask-length": (
        mask(np.full((2, 5), 0.2)),
        "scores",
        "scores=5: vectors have 5 values but the category map has 4 classes",
    ),
    "rollup-not-a-matrix": (rollup(np.full(4, 0.25)), "scores", "scores=(4,): must be a matrix"),
    "rollup-not-numbers": (rollup([["a", "b", "c", "d"]]), "scores", "scores='<U1': must hold numbers"),
    # rows summing to more than 1 beyond the tolerance (less is a partial row, and valid)
    "rollup-sum-above": (
        rollup(with_value(2, 0, 0.25 + 2e-3)),
        "scores[2]",
        "scores[2]='sum=1.002': probabilities must sum to at most 1 (+0.001) (logits? use --logits)",
    ),
    "rollup-percent": (
        rollup(GOOD * 100),
        "scores[0]",
        "scores[0]='sum=100': probabilities must sum to at most 1 (+0.001) (scores in percent? divide them by 100)",
    ),
    "mask-sum": (mask(GOOD * 2), "scores[0]", "scores[0]='sum=2': probabilities must sum to at most 1"),
}

LABEL_CASES = {
    "labels-unresolved": (
        lambda: CategoryMap(["Vanessa atalanta", "Nope", "Nada"], TAXONOMY),
        "labels",
        "labels=['Nope', 'Nada']: 2 of 3 labels resolve to no taxon",
    ),
    "labels-all-unresolved-even-excluded": (
        lambda: CategoryMap(["Nope"], TAXONOMY, on_unresolved="exclude"),
        "labels",
        "labels=['Nope']: 1 of 1 labels resolve to no taxon",
    ),
    "labels-on-unresolved": (
        lambda: CategoryMap(VANESSA_LABELS, TAXONOMY, on_unresolved="ignore"),
        "on_unresolved",
        'on_unresolved=\'ignore\': must be "error" or "exclude"',
    ),
    "labels-duplicate": (
        lambda: CategoryMap(["Vanessa atalanta", "Vanessa cardui", " Vanessa atalanta"], TAXONOMY),
        "labels",
        "labels=['Vanessa atalanta']: 1 labels appear more than once",
    ),
    "labels-empty": (lambda: CategoryMap([], TAXONOMY), "labels", "labels=[]: a category map needs at least one class"),
    "class-taxa-length": (
        lambda: CategoryMap.from_taxa(["a"], [0, 1], TAXONOMY),
        "class_taxa",
        "class_taxa=(2,): one taxon per label expected (1 labels)",
    ),
    "class-taxa-outside": (
        lambda: CategoryMap.from_taxa(["a", "b"], [0, 99], TAXONOMY),
        "class_taxa",
        "class_taxa=[0, 99]: taxon ids outside the taxonomy",
    ),
    "class-taxa-none": (
        lambda: CategoryMap.from_taxa(["a"], [-1], TAXONOMY),
        "class_taxa",
        "class_taxa=[]: no class has a taxon",
    ),
}

SETTING_CASES = {
    # thresholds outside (0, 1]
    "threshold-zero": (
        rollup(GOOD, thresholds={"genus": 0}),
        "thresholds.genus",
        "thresholds.genus=0: must be in (0, 1]",
    ),
    "threshold-above-one": (
        rollup(GOOD, thresholds={"species": 0.8, "genus": 1.5}),
        "thresholds.genus",
        "thresholds.genus=1.5: must be in (0, 1]",
    ),
    "threshold-negative": (
        rollup(GOOD, thresholds={"family": -0.2}),
        "thresholds.family",
        "thresholds.family=-0.2: must be in (0, 1]",
    ),
    "threshold-nan": (
        rollup(GOOD, thresholds={"genus": float("nan")}),
        "thresholds.genus",
        "thresholds.genus=nan: must be in (0, 1]",
    ),
    "threshold-not-number": (
        rollup(GOOD, thresholds={"genus": "high"}),
        "thresholds.genus",
        "thresholds.genus='high': must be a number in (0, 1]",
    ),
    "threshold-none-given": (
        rollup(GOOD, thresholds={}),
        "thresholds",
        "thresholds={}: give at least one rank threshold",
    ),
    "apply-threshold-above-one": (
        lambda: apply_thresholds(rollup_candidates(GOOD, CMAP), {"species": 2, "genus": 0.6, "family": 0.4}),
        "thresholds.species",
        "thresholds.species=2: must be in (0, 1]",
    ),
    # unknown ranks
    "threshold-unknown-rank": (
        rollup(GOOD, thresholds={"spieces": 0.8}),
        "thresholds.spieces",
        "thresholds.spieces='spieces': unknown rank; known ranks are kingdom",
    ),
    "order-unknown-rank": (
        rollup(GOOD, thresholds={"species": 0.8}, order=["tribus"]),
        "order",
        "order='tribus': unknown rank",
    ),
    "parse-rank-unknown": (lambda: parse_rank("Unknown"), "rank", "rank='Unknown': unknown rank"),
    "rank-level-unknown": (lambda: rank_from_level(42), "rank_level", "rank_level=42: unknown iNaturalist rank level"),
    # rank order not fine-to-coarse, repeated, empty, inconsistent with the thresholds
    "order-coarse-to-fine": (
        rollup(GOOD, thresholds={"species": 0.8, "genus": 0.6}, order=["genus", "species"]),
        "order",
        "order=['genus', 'species']: ranks must go from fine to coarse, e.g. ['species', 'genus']",
    ),
    "order-repeated": (
        lambda: check_rollup_order(["species", "Species"]),
        "order",
        "order=['species', 'species']: a rank appears more than once",
    ),
    "order-empty": (lambda: check_rollup_order([]), "order", "order=[]: the roll-up order needs at least one rank"),
    "order-without-threshold": (
        rollup(GOOD, thresholds={"species": 0.8, "genus": 0.6}, order=["species", "genus", "family"]),
        "order",
        "order=['species', 'genus', 'family']: no threshold for family",
    ),
    "threshold-outside-order": (
        rollup(GOOD, order=["species", "genus"]),
        "thresholds",
        "thresholds={'species': 0.8, 'genus': 0.6, 'family': 0.4}: family not in the roll-up order",
    ),
    "candidates-order": (
        lambda: rollup_candidates(GOOD, CMAP, order=["family", "genus"]),
        "order",
        "order=['family', 'genus']: ranks must go from fine to coarse",
    ),
    "rollup-mode": (rollup(GOOD, mode="best"), "mode", "mode='best': must be one of lineage, distribution"),
    "candidates-mode": (
        lambda: rollup_candidates(GOOD, CMAP, mode="argmax"),
        "mode",
        "mode='argmax': must be one of lineage, distribution",
    ),
    "check-thresholds-rank": (
        lambda: check_thresholds({"kingdom": 0.5, "unknown": 0.5}),
        "thresholds.unknown",
        "thresholds.unknown='unknown': unknown rank",
    ),
}

TAXONOMY_CASES = {
    # cycles and duplicates in a taxonomy
    "cycle": (
        taxonomy(TaxonRecord("A", "genus", "B"), TaxonRecord("B", "family", "A")),
        "parent",
        "parent='A': the taxonomy has a cycle: A -> B -> A",
    ),
    "self-parent": (taxonomy(TaxonRecord("A", "genus", "A")), "parent", "parent='A': the taxonomy has a cycle: A -> A"),
    "cycle-below-a-root": (
        taxonomy(
            TaxonRecord("Root", "order"),
            TaxonRecord("A", "family", "C"),
            TaxonRecord("B", "genus", "A"),
            TaxonRecord("C", "species", "B"),
        ),
        "parent",
        "the taxonomy has a cycle: A -> C -> B -> A",
    ),
    "duplicate-name": (
        taxonomy(TaxonRecord("Vanessa", "genus"), TaxonRecord("Vanessa", "genus")),
        "name",
        "name='Vanessa': duplicate taxon (first given earlier)",
    ),
    "duplicate-name-with-source": (
        taxonomy(TaxonRecord("Vanessa", "genus", source="a.csv:2"), TaxonRecord("Vanessa", "genus", source="a.csv:9")),
        "name",
        "a.csv:9: name='Vanessa': duplicate taxon (first given at a.csv:2)",
    ),
    "duplicate-external-id": (
        taxonomy(TaxonRecord("A", "genus", external_ids=("17",)), TaxonRecord("B", "genus", external_ids=("17",))),
        "external id",
        "external id='17': given to both 'A' and 'B'",
    ),
    # a parent not coarser than its child
    "parent-same-rank": (
        taxonomy(TaxonRecord("A", "species"), TaxonRecord("B", "species", "A")),
        "parent of 'B'",
        "parent of 'B'='A': a parent must be coarser than its child, but 'A' is a species and 'B' a species",
    ),
    "parent-finer": (
        taxonomy(TaxonRecord("Noctuidae", "family", "Agrotis"), TaxonRecord("Agrotis", "genus")),
        "parent of 'Noctuidae'",
        "parent of 'Noctuidae'='Agrotis': a parent must be coarser than its child",
    ),
    "unknown-rank": (taxonomy(TaxonRecord("A", "spieces")), "rank of 'A'", "rank of 'A'='spieces': unknown rank"),
    "unknown-parent": (
        taxonomy(TaxonRecord("A", "genus", "Nope")),
        "parent of 'A'",
        "parent of 'A'='Nope': no taxon has this name",
    ),
    "empty-name": (taxonomy(TaxonRecord(" ", "genus")), "name", "name=' ': a taxon needs a non-empty name"),
    # one name with two lineages in a lineage table
    "two-lineages": (
        lineages(
            {"species": "Vanessa atalanta", "genus": "Vanessa", "family": "Nymphalidae"},
            {"species": "Vanessa cardui", "genus": "Vanessa", "family": "Erebidae"},
        ),
        "genus",
        "line 3: genus='Vanessa': one name with two lineages: under 'Nymphalidae' on line 2 and under 'Erebidae' here",
    ),
    "two-ranks": (
        lineages({"genus": "Vanessa", "family": "Nymphalidae"}, {"genus": "X", "family": "Vanessa"}, source="t.csv"),
        "family",
        "t.csv:3: family='Vanessa': also given as a genus on line 2",
    ),
    "empty-lineage": (
        lineages({"species": "", "genus": " ", "family": ""}),
        "row",
        "line 2: row={'species': '', 'genus': ' ', 'family': ''}: names no taxon in any rank column",
    ),
    "lineage-unknown-rank-column": (
        lineages({"colour": "red"}, ranks=["colour"]),
        "rank column",
        "rank column='colour': unknown rank",
    ),
}

TAXA_LIST_CASES = {
    # an empty or all-excluding taxa list; all-excluded masking
    "taxa-list-empty": (lambda: CMAP.admitted_by([]), "taxa_list", "taxa_list=[]: the taxa list is empty"),
    "taxa-list-excludes-all": (
        lambda: CategoryMap(VANESSA_LABELS[:3], MOTHS_TAXONOMY).admitted_by(
            [MOTHS_TAXONOMY.index("Catocala"), MOTHS_TAXONOMY.index("Danaus")]
        ),
        "taxa_list",
        "taxa_list=['Catocala', 'Danaus']: the taxa list keeps none of the 3 classes of the category map",
    ),
    "taxa-list-only-unresolved": (
        lambda: CMAP.admitted_by([-1]),
        "taxa_list",
        "taxa_list=[None]: the taxa list keeps none of the 4 classes of the category map",
    ),
    "taxa-list-field-name": (lambda: CMAP.admitted_by([], field="taxa"), "taxa", "taxa=[]: the taxa list is empty"),
    "mask-keeps-nothing": (
        lambda: class_masking(GOOD, CMAP, np.zeros(4, dtype=bool)),
        "taxa_list",
        "taxa_list='keep': keeps none of the classes of the category map",
    ),
    "mask-keeps-only-unresolved": (
        lambda: class_masking(
            np.array([[0.5, 0.5]]),
            CategoryMap(["Vanessa atalanta", "Nope"], TAXONOMY, on_unresolved="exclude"),
            np.array([False, True]),
        ),
        "taxa_list",
        "keeps none of the classes",
    ),
    "mask-keep-shape": (
        lambda: class_masking(GOOD, CMAP, np.ones(3, dtype=bool)),
        "keep",
        "keep=(3,): must be a boolean vector of 4 classes",
    ),
}

SIZE_CASES = {
    "bbox-outside": (
        sizes([[0, 0, 120, 10]], [[100, 100]]),
        "bbox[0]",
        "bbox[0]=[0.0, 0.0, 120.0, 10.0]: lies outside its image (by more than 1 px)",
    ),
    "bbox-negative-corner": (
        sizes([[0, 0, 1, 1], [-5, 0, 1, 1]], [[100, 100]] * 2),
        "bbox[1]",
        "bbox[1]=[-5.0, 0.0, 1.0, 1.0]: lies outside its image",
    ),
    "bbox-x2-before-x1": (
        sizes([[0, 0, 1, 1], [5, 0, 1, 10]], [[100, 100]] * 2),
        "bbox[1]",
        "bbox[1]=[5.0, 0.0, 1.0, 10.0]: needs x1 <= x2 and y1 <= y2",
    ),
    "bbox-y2-before-y1": (
        sizes([[0, 9, 1, 1]], [[100, 100]]),
        "bbox[0]",
        "bbox[0]=[0.0, 9.0, 1.0, 1.0]: needs x1 <= x2 and y1 <= y2",
    ),
    "bbox-infinite": (
        sizes([[0, 0, np.inf, 1]], [[100, 100]]),
        "bbox[0]",
        "bbox[0]=[0.0, 0.0, inf, 1.0]: must be finite",
    ),
    "image-size-zero": (
        sizes([[0, 0, 1, 1]], [[0, 100]]),
        "image size[0]",
        "image size[0]=[0.0, 100.0]: width and height must be positive",
    ),
    "image-size-negative": (
        sizes([[0, 0, 1, 1], [0, 0, 1, 1]], [[100, 100], [100, -3]]),
        "image size[1]",
        "image size[1]=[100.0, -3.0]: width and height must be positive",
    ),
    "image-size-count": (
        sizes([[0, 0, 1, 1]] * 2, [[100, 100]]),
        "image_sizes",
        "image_sizes=1: one size per box expected (2 boxes)",
    ),
}
for _value in (0, 1, 1.5, -0.1, float("nan")):
    SIZE_CASES[f"size-threshold-{_value}"] = (
        sizes([[0, 0, 1, 1]], [[100, 100]], size_threshold=_value),
        "size_threshold",
        f"size_threshold={_value!r}: must be in the open interval (0, 1)",
    )
SIZE_CASES["size-threshold-text"] = (
    sizes([[0, 0, 1, 1]], [[100, 100]], size_threshold="small"),
    "size_threshold",
    "size_threshold='small': must be a number in (0, 1)",
)

CASES = {**SCORE_CASES, **LABEL_CASES, **SETTING_CASES, **TAXONOMY_CASES, **TAXA_LIST_CASES, **SIZE_CASES}


@pytest.mark.parametrize(("call", "field", "message"), list(CASES.values()), ids=list(CASES))
def test_bad_input_raises_input_error_naming_field_and_value(call, field, message):
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        call()
    assert caught.value.field == field


@pytest.mark.filterwarnings("error")  # refused in words, without a NumPy warning on the terminal
def test_bad_input_logits_too_large_to_add():
    logits = np.zeros((2, 4))
    logits[1, 2:] = 1e308
    with pytest.raises(InputError, match=re.escape("logits[1]='overflow': the row's values are too large to add up")):
        rank_rollup(logits, CMAP, logits=True)


def test_sum_within_tolerance_is_accepted():
    from taxopost.core._validation import SUM_TOLERANCE

    scores = with_value(0, 0, 0.25 + SUM_TOLERANCE / 2, with_value(1, 0, 0.25 - SUM_TOLERANCE / 2))
    assert len(rank_rollup(scores, CMAP)) == 3
    assert len(class_masking(scores, CMAP, KEEP)) == 3


def test_bad_input_error_is_a_value_error_with_parts():
    with pytest.raises(ValueError, match="thresholds.genus=1.5") as caught:
        rank_rollup(GOOD, CMAP, thresholds={"genus": 1.5})
    error = caught.value
    assert (error.field, error.value, error.reason) == ("thresholds.genus", 1.5, "must be in (0, 1]")
    assert error.with_source("config.yaml").message == "config.yaml: thresholds.genus=1.5: must be in (0, 1]"
