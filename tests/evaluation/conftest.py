"""Fixtures of the evaluation tests: a small moth taxonomy, a synthetic larger one, and a plain reference."""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.core import CategoryMap, Taxonomy, TaxonRecord
from taxopost.core.simulate import simulate_outputs

#: order > 2 families > 3 genera > 6 species; Catocala is also a genus-level class.
MOTHS = [
    TaxonRecord("Lepidoptera", "order"),
    TaxonRecord("Nymphalidae", "family", "Lepidoptera"),
    TaxonRecord("Vanessa", "genus", "Nymphalidae"),
    TaxonRecord("Vanessa atalanta", "species", "Vanessa", external_ids=("1898286",)),
    TaxonRecord("Vanessa cardui", "species", "Vanessa", external_ids=("4299368",)),
    TaxonRecord("Vanessa itea", "species", "Vanessa"),
    TaxonRecord("Danaus", "genus", "Nymphalidae"),
    TaxonRecord("Danaus plexippus", "species", "Danaus"),
    TaxonRecord("Erebidae", "family", "Lepidoptera"),
    TaxonRecord("Catocala", "genus", "Erebidae"),
    TaxonRecord("Catocala ilia", "species", "Catocala"),
    TaxonRecord("Catocala relicta", "species", "Catocala"),
]
LABELS = [
    "Vanessa atalanta",
    "Vanessa cardui",
    "Vanessa itea",
    "Danaus plexippus",
    "Catocala ilia",
    "Catocala relicta",
    "Catocala",
]
TAXONOMY_CSV = """order,family,genus,species,id
Lepidoptera,Nymphalidae,Vanessa,Vanessa atalanta,1898286
Lepidoptera,Nymphalidae,Vanessa,Vanessa cardui,4299368
Lepidoptera,Nymphalidae,Vanessa,Vanessa itea,
Lepidoptera,Nymphalidae,Danaus,Danaus plexippus,
Lepidoptera,Erebidae,Catocala,Catocala ilia,
Lepidoptera,Erebidae,Catocala,Catocala relicta,
"""


@pytest.fixture(scope="session")
def moths() -> Taxonomy:
    return Taxonomy(MOTHS)


@pytest.fixture(scope="session")
def moths_map(moths: Taxonomy) -> CategoryMap:
    return CategoryMap(LABELS, moths)


def synthetic_map(n_families: int = 8, n_genera: int = 4, n_species: int = 5) -> CategoryMap:
    """A species/genus/family label space of ``n_families * n_genera * n_species`` classes (no common root)."""
    records, labels = [], []
    for f in range(n_families):
        records.append(TaxonRecord(f"F{f}", "family"))
        for g in range(n_genera):
            records.append(TaxonRecord(f"F{f}G{g}", "genus", f"F{f}"))
            for s in range(n_species):
                records.append(TaxonRecord(f"F{f}G{g}S{s}", "species", f"F{f}G{g}"))
                labels.append(f"F{f}G{g}S{s}")
    return CategoryMap(labels, Taxonomy(records))


@pytest.fixture(scope="session")
def synthetic() -> CategoryMap:
    return synthetic_map()


@pytest.fixture(scope="session")
def simulated(synthetic: CategoryMap):
    """3,000 simulated rows over the synthetic label space: (scores float32, true taxa)."""
    outputs = simulate_outputs(synthetic, 3000, seed=7)
    return outputs.scores(), synthetic.class_taxa[outputs.true_class].astype(np.int64)


# -- a plain per-row reference, from parent links only -------------------------------------------


def lineage(taxonomy: Taxonomy, taxon: int) -> list[int]:
    chain = []
    while taxon >= 0:
        chain.append(int(taxon))
        taxon = int(taxonomy.parents[taxon])
    return chain


def ref_correct(taxonomy: Taxonomy, truth: int, pred: int) -> bool:
    return pred in lineage(taxonomy, truth)


def ref_lca(taxonomy: Taxonomy, a: int, b: int) -> int:
    others = set(lineage(taxonomy, b))
    return next((t for t in lineage(taxonomy, a) if t in others), -1)
