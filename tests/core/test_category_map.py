"""Category maps: a label space resolved against a taxonomy, and the classes a taxa list admits."""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.core import NO_TAXON, CategoryMap
from tests.core.reference import MOTHS, MOTHS_LABELS, ids_of


def test_category_map_resolves_names_ids_and_synonyms(moths):
    category_map = CategoryMap(["Vanessa atalanta", "5133088", "Painted Lady", " Catocala "], moths)
    assert category_map.n_classes == len(category_map) == 4
    assert category_map.taxon_names() == ["Vanessa atalanta", "Danaus plexippus", "Vanessa cardui", "Catocala"]
    assert category_map.labels[3] == "Catocala"
    assert category_map.class_taxa.dtype == np.int32
    assert category_map.resolved.all()
    assert category_map.unresolved == ()


def test_category_map_names_and_ids_give_same_taxa(moths):
    by_name = CategoryMap(MOTHS_LABELS, moths)
    by_id = CategoryMap(ids_of(MOTHS, MOTHS_LABELS), moths)
    np.testing.assert_array_equal(by_name.class_taxa, by_id.class_taxa)


def test_category_map_classes_of_any_rank(moths_map):
    ranks = [moths_map.taxonomy.rank_of(t) for t in moths_map.class_taxa]
    assert ranks == ["species"] * 7 + ["genus", "family"]


def test_category_map_class_taxa_read_only(moths_map):
    with pytest.raises(ValueError, match="read-only"):
        moths_map.class_taxa[0] = 1


def test_category_map_exclude_unresolved(moths):
    category_map = CategoryMap(["Vanessa atalanta", "Mystery moth", "Catocala"], moths, on_unresolved="exclude")
    assert category_map.class_taxa.tolist() == [moths.index("Vanessa atalanta"), NO_TAXON, moths.index("Catocala")]
    assert category_map.resolved.tolist() == [True, False, True]
    assert category_map.unresolved == ("Mystery moth",)
    assert category_map.taxon_names() == ["Vanessa atalanta", None, "Catocala"]


def test_category_map_from_taxa(moths):
    taxa = [moths.index("Vanessa itea"), NO_TAXON, moths.index("Erebidae")]
    category_map = CategoryMap.from_taxa(["a", "b", "c"], taxa, moths)
    assert category_map.class_taxa.tolist() == taxa
    assert category_map.unresolved == ("b",)
    assert category_map.resolved.tolist() == [True, False, True]


def test_admitted_by_includes_descendants(moths_map):
    taxonomy = moths_map.taxonomy
    keep = moths_map.admitted_by([taxonomy.index("Nymphalini"), taxonomy.index("Catocala ilia")])
    assert [label for label, kept in zip(moths_map.labels, keep, strict=True) if kept] == [
        "Vanessa atalanta",
        "Vanessa cardui",
        "Vanessa itea",
        "Catocala ilia",
    ]


def test_admitted_by_genus_admits_genus_level_class(moths_map):
    keep = moths_map.admitted_by([moths_map.taxonomy.index("Catocala")])
    assert keep.tolist() == [False] * 5 + [True, True, True, False]


def test_admitted_by_species_does_not_admit_its_genus_class(moths_map):
    keep = moths_map.admitted_by([moths_map.taxonomy.index("Catocala relicta")])
    assert keep.tolist() == [False] * 6 + [True, False, False]


def test_admitted_by_never_admits_unresolved(moths):
    category_map = CategoryMap(["Vanessa atalanta", "Mystery moth"], moths, on_unresolved="exclude")
    assert category_map.admitted_by([moths.index("Lepidoptera")]).tolist() == [True, False]


def test_admitted_by_no_taxon_entry_admits_nothing(moths_map):
    # NO_TAXON is "none", never the last taxon of the taxonomy (Geometridae, a class here)
    keep = moths_map.admitted_by([NO_TAXON, moths_map.taxonomy.index("Catocala ilia")])
    assert keep.tolist() == [False] * 5 + [True] + [False] * 3
