"""A deliberately plain reference for the core's rules, and the small taxonomies tests share.

The reference reads the rules of docs/core.md literally, one row at a time, with a dict per rank and a walk up
the parent names; it uses nothing from ``taxopost`` but the records' plain fields. It compares in
the same precision as the core: aggregates are summed as Python floats (float64) in class order,
then rounded to the input dtype before the ``>=`` test against the threshold rounded the same way
(see ``taxopost.core._kernels._round``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from taxopost.core import NO_TAXON, CategoryMap, TaxonRecord

# -- small taxonomies ------------------------------------------------------------------------

#: Antenna's example: order > family > genus Vanessa (3 species), plus Danaus to take the rest.
VANESSA = [
    TaxonRecord("Lepidoptera", "order"),
    TaxonRecord("Nymphalidae", "family", "Lepidoptera"),
    TaxonRecord("Vanessa", "genus", "Nymphalidae"),
    TaxonRecord("Vanessa atalanta", "species", "Vanessa", external_ids=("1898286",)),
    TaxonRecord("Vanessa cardui", "species", "Vanessa", external_ids=("4299368",)),
    TaxonRecord("Vanessa itea", "species", "Vanessa", external_ids=("1898301",)),
    TaxonRecord("Danaus", "genus", "Nymphalidae"),
    TaxonRecord("Danaus plexippus", "species", "Danaus", external_ids=("5133088",)),
]
VANESSA_LABELS = ["Vanessa atalanta", "Vanessa cardui", "Vanessa itea", "Danaus plexippus"]

#: A deeper taxonomy: a tribe under Nymphalinae for Vanessa only (Danaus skips subfamily and
#: tribe), a second family, genus-level and family-level classes, several ids per taxon.
MOTHS = [
    TaxonRecord("Lepidoptera", "order", external_ids=("797",)),
    TaxonRecord("Nymphalidae", "family", "Lepidoptera", external_ids=("7017",)),
    TaxonRecord("Nymphalinae", "subfamily", "Nymphalidae", external_ids=("7018",)),
    TaxonRecord("Nymphalini", "tribe", "Nymphalinae", external_ids=("7019",)),
    TaxonRecord("Vanessa", "genus", "Nymphalini", external_ids=("1898218",)),
    TaxonRecord("Vanessa atalanta", "species", "Vanessa", external_ids=("1898286", "9999001")),
    TaxonRecord("Vanessa cardui", "species", "Vanessa", external_ids=("4299368",), synonyms=("Painted Lady",)),
    TaxonRecord("Vanessa itea", "species", "Vanessa", external_ids=("1898301",)),
    TaxonRecord("Danaus", "genus", "Nymphalidae", external_ids=("5133087",)),
    TaxonRecord("Danaus plexippus", "species", "Danaus", external_ids=("5133088",), synonyms=("Monarch",)),
    TaxonRecord("Danaus gilippus", "species", "Danaus", external_ids=("5133090",)),
    TaxonRecord("Erebidae", "family", "Lepidoptera", external_ids=("4532185",)),
    TaxonRecord("Catocala", "genus", "Erebidae", external_ids=("1777614",)),
    TaxonRecord("Catocala ilia", "species", "Catocala", external_ids=("1777628",)),
    TaxonRecord("Catocala relicta", "species", "Catocala", external_ids=("1777631",)),
    TaxonRecord("Geometridae", "family", "Lepidoptera", external_ids=("6211",)),
]
#: Class labels of MOTHS, by name: species, a genus-level class and a family-level class.
MOTHS_LABELS = [
    "Vanessa atalanta",
    "Vanessa cardui",
    "Vanessa itea",
    "Danaus plexippus",
    "Danaus gilippus",
    "Catocala ilia",
    "Catocala relicta",
    "Catocala",
    "Geometridae",
]


def ids_of(records: Sequence[TaxonRecord], names: Sequence[str]) -> list[str]:
    """The first external id of each named taxon (labels as ids instead of names)."""
    by_name = {record.name: record for record in records}
    return [by_name[name].external_ids[0] for name in names]


def exact_rows(rng: np.random.Generator, n_rows: int, n_classes: int, *, unit: int = 1024) -> np.ndarray:
    """Probability rows that are multiples of ``1/unit`` (exact in float32 and float64, sums too).

    Half the rows are peaked (most mass on one class), half spread.
    """
    rows = np.empty((n_rows, n_classes), dtype=np.float64)
    for i in range(n_rows):
        if i % 2:
            weights = rng.dirichlet(np.full(n_classes, 0.5))
        else:
            weights = rng.dirichlet(np.full(n_classes, 0.2))
            weights[rng.integers(n_classes)] += 2.0
            weights /= weights.sum()
        counts = np.floor(weights * unit).astype(np.int64)
        counts[np.argmax(weights)] += unit - counts.sum()
        rows[i] = counts / unit
    return rows


# -- the reference roll-up ---------------------------------------------------------------------


@dataclass(frozen=True)
class PlainTaxonomy:
    """Name -> rank and name -> parent name, nothing else."""

    rank: dict[str, str]
    parent: dict[str, str | None]

    @classmethod
    def of(cls, records: Sequence[TaxonRecord]) -> PlainTaxonomy:
        return cls({r.name: r.rank for r in records}, {r.name: r.parent for r in records})

    def ancestor_at(self, name: str | None, rank: str) -> str | None:
        """The ancestor-or-self of ``name`` at ``rank``, None when the lineage skips it."""
        while name is not None:
            if self.rank[name] == rank:
                return name
            name = self.parent[name]
        return None

    def lineage(self, name: str) -> list[str]:
        chain = []
        node: str | None = name
        while node is not None:
            chain.append(node)
            node = self.parent[node]
        return chain


@dataclass(frozen=True)
class RefRow:
    source_class: int
    source: str
    source_score: float
    taxon: str
    score: float
    accepted: int  # index into the order, -1 when no rank was accepted
    evidence: list[tuple[str | None, float]]  # per rank of the order; (None, nan) where not examined


def reference_rollup_row(
    row: np.ndarray,
    class_names: Sequence[str | None],
    taxonomy: PlainTaxonomy,
    order: Sequence[str],
    thresholds: Mapping[str, float],
    mode: str,
) -> RefRow:
    """The documented rank roll-up of one row (docs/core.md), read word for word."""
    to_dtype = row.dtype.type
    # The source prediction: the argmax over classes that have a taxon (first one on a tie).
    source_class = None
    for c, name in enumerate(class_names):
        if name is not None and (source_class is None or row[c] > row[source_class]):
            source_class = c
    source = class_names[source_class]
    evidence: list[tuple[str | None, float]] = [(None, math.nan)] * len(order)
    for r, rank in enumerate(order):
        # "the aggregate of taxon t at rank R is the sum of the scores of every class whose taxon
        # is t or a descendant of t"; a class coarser than R, or skipping R, adds to nothing.
        # Insertion order of the dict = order of each taxon's first class.
        aggregates: dict[str, float] = {}
        for c, name in enumerate(class_names):
            if name is None:
                continue
            ancestor = taxonomy.ancestor_at(name, rank)
            if ancestor is None:
                continue
            aggregates[ancestor] = aggregates.get(ancestor, 0.0) + float(row[c])
        if mode == "lineage":
            candidate = taxonomy.ancestor_at(source, rank)
            if candidate is None:
                continue
        else:
            if not aggregates:
                continue
            candidate = max(aggregates, key=aggregates.__getitem__)  # first maximum wins a tie
        score = to_dtype(aggregates[candidate])
        evidence[r] = (candidate, score)
        if score >= to_dtype(thresholds[rank]):
            return RefRow(source_class, source, row[source_class], candidate, score, r, evidence)
    return RefRow(source_class, source, row[source_class], source, row[source_class], -1, evidence)


def assert_matches_reference(
    result,
    scores: np.ndarray,
    category_map: CategoryMap,
    class_names: Sequence[str | None],
    taxonomy: PlainTaxonomy,
    *,
    rows: Sequence[int] | None = None,
) -> None:
    """Every field of ``result`` (a RollupResult over ``scores``) agrees with the reference."""
    names = category_map.taxonomy.names
    order = result.order
    thresholds = result.thresholds if result.thresholds else {rank: math.inf for rank in order}
    for i in range(scores.shape[0]) if rows is None else rows:
        ref = reference_rollup_row(scores[i], class_names, taxonomy, order, thresholds, result.mode)
        where = f"row {i}: {ref}"
        assert result.source_class[i] == ref.source_class, where
        assert names[result.source_taxon[i]] == ref.source, where
        assert result.source_score[i] == ref.source_score, where
        assert names[result.taxon[i]] == ref.taxon, where
        assert result.accepted_rank[i] == ref.accepted, where
        assert result.score[i] == ref.score, where
        assert result.changed[i] == (ref.taxon != ref.source), where
        for r, (taxon, score) in enumerate(ref.evidence):
            if taxon is None:
                assert result.evidence_taxon[i, r] == NO_TAXON, where
                assert np.isnan(result.evidence_score[i, r]), where
            else:
                assert names[result.evidence_taxon[i, r]] == taxon, where
                assert result.evidence_score[i, r] == score, where


# -- the reference masking ---------------------------------------------------------------------


def reference_softmax_kept(logits: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Softmax over the kept logits only, in float64; excluded classes get 0."""
    out = np.zeros(logits.shape, dtype=np.float64)
    for i, row in enumerate(logits.astype(np.float64)):
        kept = row[keep]
        e = np.exp(kept - kept.max())
        out[i, keep] = e / e.sum()
    return out


def assert_same_result(a, b) -> None:
    """Two result dataclasses (RollupResult, MaskingResult) agree on every field, dtypes included."""
    assert type(a) is type(b)
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray), name
            assert x.dtype == y.dtype, (name, x.dtype, y.dtype)
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x == y, (name, x, y)
