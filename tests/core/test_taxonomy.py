"""The taxonomy index: building it, resolving labels, and its vectorised lineage queries."""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.core import NO_TAXON, Taxonomy, TaxonRecord
from taxopost.errors import InputError
from tests.core.reference import MOTHS


def ids(taxonomy: Taxonomy, *names: str) -> np.ndarray:
    return np.array([taxonomy.index(name) if name else NO_TAXON for name in names])


# -- building ----------------------------------------------------------------------------------


def test_taxonomy_numbers_taxa_in_given_order(moths):
    assert moths.n_taxa == len(moths) == len(MOTHS)
    assert moths.names == tuple(record.name for record in MOTHS)
    assert moths.index("Vanessa") == 4
    assert moths.rank_of(moths.index("Nymphalini")) == "tribe"


def test_taxonomy_rank_names_are_case_insensitive():
    taxonomy = Taxonomy([TaxonRecord("Lepidoptera", "Order"), TaxonRecord("Erebidae", " FAMILY ", "Lepidoptera")])
    assert taxonomy.rank_of(1) == "family"


def test_taxonomy_records_may_come_in_any_order():
    taxonomy = Taxonomy([TaxonRecord("Vanessa atalanta", "species", "Vanessa"), TaxonRecord("Vanessa", "genus")])
    assert taxonomy.lineage(0) == [0, 1]


def test_taxonomy_depth(moths):
    assert moths.depth[moths.index("Lepidoptera")] == 0
    assert moths.depth[moths.index("Nymphalidae")] == 1
    assert moths.depth[moths.index("Vanessa atalanta")] == 5
    assert moths.depth[moths.index("Danaus plexippus")] == 3  # Danaus skips subfamily and tribe


def test_taxonomy_lineage_fine_to_coarse(moths):
    chain = [moths.names[t] for t in moths.lineage(moths.index("Vanessa itea"))]
    assert chain == ["Vanessa itea", "Vanessa", "Nymphalini", "Nymphalinae", "Nymphalidae", "Lepidoptera"]


def test_taxonomy_present_rank_codes_fine_to_coarse(moths):
    from taxopost.core.ranks import RANKS

    assert [RANKS[c] for c in moths.present_rank_codes] == [
        "species",
        "genus",
        "tribe",
        "subfamily",
        "family",
        "order",
    ]


# -- finding a label ---------------------------------------------------------------------------


def test_find_by_external_id_name_and_synonym(moths):
    assert moths.find("1898286") == moths.index("Vanessa atalanta")
    assert moths.find("Vanessa atalanta") == moths.index("Vanessa atalanta")
    assert moths.find("Monarch") == moths.index("Danaus plexippus")
    assert moths.find(" Vanessa cardui  ") == moths.index("Vanessa cardui")
    assert moths.find(5133088) == moths.index("Danaus plexippus")  # an int key is a string key
    assert moths.find("Vanessa virginiensis") == NO_TAXON


def test_find_several_external_ids_per_taxon(moths):
    assert moths.find("1898286") == moths.find("9999001") == moths.index("Vanessa atalanta")
    assert moths.external_ids["9999001"] == moths.index("Vanessa atalanta")


def test_find_prefers_external_id_then_name_then_synonym():
    taxonomy = Taxonomy(
        [
            TaxonRecord("Alpha", "genus", external_ids=("Beta",)),
            TaxonRecord("Beta", "genus", synonyms=("Gamma",)),
            TaxonRecord("Gamma", "genus"),
            TaxonRecord("Delta", "genus", synonyms=("Old",)),
        ]
    )
    assert taxonomy.find("Beta") == taxonomy.index("Alpha")  # external id beats a name
    assert taxonomy.find("Gamma") == taxonomy.index("Gamma")  # a name beats a synonym
    assert taxonomy.find("Old") == taxonomy.index("Delta")


def test_find_ambiguous_synonym_resolves_to_nothing():
    taxonomy = Taxonomy(
        [
            TaxonRecord("Alpha", "genus", synonyms=("Shared", "Own")),
            TaxonRecord("Beta", "genus", synonyms=("Shared",)),
        ]
    )
    assert taxonomy.find("Shared") == NO_TAXON
    assert taxonomy.find("Own") == taxonomy.index("Alpha")
    assert taxonomy.synonyms_of() == {taxonomy.index("Alpha"): ("Own",)}


def test_index_needs_exact_name(moths):
    with pytest.raises(InputError, match=r"taxon='Monarch': no taxon has this name"):
        moths.index("Monarch")


# -- vectorised queries ------------------------------------------------------------------------


def test_ancestor_at(moths):
    genus = moths.ancestor_at("genus")
    assert genus.shape == (moths.n_taxa,)
    assert genus.dtype == np.int32
    assert genus[moths.index("Vanessa itea")] == moths.index("Vanessa")
    assert genus[moths.index("Vanessa")] == moths.index("Vanessa")  # ancestor or self
    assert genus[moths.index("Nymphalidae")] == NO_TAXON  # coarser than the rank
    family = moths.ancestor_at("Family")
    assert family[moths.index("Danaus plexippus")] == moths.index("Nymphalidae")


def test_ancestor_at_no_taxon_where_lineage_skips_rank(moths):
    tribe = moths.ancestor_at("tribe")
    assert tribe[moths.index("Danaus plexippus")] == NO_TAXON
    assert tribe[moths.index("Danaus")] == NO_TAXON
    assert tribe[moths.index("Vanessa cardui")] == moths.index("Nymphalini")
    assert (moths.ancestor_at("kingdom") == NO_TAXON).all()  # no taxon of that rank at all


def test_ancestor_at_is_read_only(moths):
    with pytest.raises(ValueError, match="read-only"):
        moths.ancestor_at("genus")[0] = 3


def test_lowest_common_ancestor(moths):
    a = ids(moths, "Vanessa atalanta", "Vanessa atalanta", "Vanessa atalanta", "Vanessa", "Catocala ilia")
    b = ids(moths, "Vanessa cardui", "Danaus plexippus", "Catocala ilia", "Vanessa itea", "Catocala ilia")
    lca = moths.lowest_common_ancestor(a, b)
    assert [moths.names[t] for t in lca] == ["Vanessa", "Nymphalidae", "Lepidoptera", "Vanessa", "Catocala ilia"]


def test_lowest_common_ancestor_of_ancestor_is_ancestor(moths):
    lca = moths.lowest_common_ancestor(
        ids(moths, "Nymphalini", "Danaus plexippus"), ids(moths, "Vanessa itea", "Danaus")
    )
    assert [moths.names[t] for t in lca] == ["Nymphalini", "Danaus"]


def test_lowest_common_ancestor_separate_roots_and_no_taxon():
    taxonomy = Taxonomy(
        [
            TaxonRecord("Lepidoptera", "order"),
            TaxonRecord("Erebidae", "family", "Lepidoptera"),
            TaxonRecord("Coleoptera", "order"),
            TaxonRecord("Carabidae", "family", "Coleoptera"),
        ]
    )
    a = ids(taxonomy, "Erebidae", "Erebidae", "", "")
    b = ids(taxonomy, "Carabidae", "", "Carabidae", "")
    np.testing.assert_array_equal(taxonomy.lowest_common_ancestor(a, b), [NO_TAXON] * 4)


def test_is_ancestor_or_self(moths):
    ancestor = ids(moths, "Vanessa", "Vanessa", "Vanessa", "Nymphalidae", "Vanessa atalanta", "", "Vanessa")
    taxon = ids(moths, "Vanessa itea", "Vanessa", "Danaus plexippus", "Vanessa itea", "Vanessa", "Vanessa", "")
    assert moths.is_ancestor_or_self(ancestor, taxon).tolist() == [True, True, False, True, False, False, False]


def test_is_ancestor_or_self_broadcasts(moths):
    species = ids(moths, "Vanessa atalanta", "Danaus plexippus", "Catocala ilia")
    result = moths.is_ancestor_or_self(moths.index("Nymphalidae"), species)
    assert result.tolist() == [True, True, False]


def test_descendants_mask(moths):
    mask = moths.descendants_mask([moths.index("Nymphalinae"), moths.index("Catocala relicta")])
    assert {moths.names[t] for t in np.flatnonzero(mask)} == {
        "Nymphalinae",
        "Nymphalini",
        "Vanessa",
        "Vanessa atalanta",
        "Vanessa cardui",
        "Vanessa itea",
        "Catocala relicta",
    }
    assert not moths.descendants_mask([]).any()


# -- lineage tables ----------------------------------------------------------------------------

LINEAGES = [
    {"family": "Nymphalidae", "genus": "Vanessa", "species": "Vanessa atalanta", "key": "1898286"},
    {"family": "Nymphalidae", "genus": "Vanessa", "species": "Vanessa cardui", "key": "4299368"},
    {"family": "Nymphalidae", "genus": "", "species": "Danaus plexippus", "key": "5133088"},
    {"family": "Erebidae", "genus": "Catocala", "species": "", "key": "1777614"},
]


def test_from_lineages_builds_parents_and_ids():
    taxonomy = Taxonomy.from_lineages(LINEAGES, ["species", "family", "genus"], id_column="key")
    assert taxonomy.n_taxa == 7
    assert taxonomy.parents[taxonomy.index("Vanessa cardui")] == taxonomy.index("Vanessa")
    assert taxonomy.rank_of(taxonomy.index("Catocala")) == "genus"
    # an empty cell skips the rank: Danaus plexippus sits right under its family
    assert taxonomy.parents[taxonomy.index("Danaus plexippus")] == taxonomy.index("Nymphalidae")
    # the id belongs to the row's finest taxon
    assert taxonomy.find("1777614") == taxonomy.index("Catocala")
    assert taxonomy.find("5133088") == taxonomy.index("Danaus plexippus")


def test_from_lineages_rank_columns_named_loosely():
    rows = [{"Family": "Nymphalidae", "Genus": "Vanessa"}]
    taxonomy = Taxonomy.from_lineages(rows, ["Genus", "Family"])
    assert taxonomy.rank_of(taxonomy.index("Vanessa")) == "genus"


def test_from_lineages_same_name_same_lineage_gains_ids():
    rows = [*LINEAGES, {"family": "Nymphalidae", "genus": "Vanessa", "species": "Vanessa cardui", "key": "777"}]
    taxonomy = Taxonomy.from_lineages(rows, ["species", "genus", "family"], id_column="key")
    assert taxonomy.find("777") == taxonomy.find("4299368") == taxonomy.index("Vanessa cardui")


def test_from_lineages_lineage_from_table_not_label():
    # The species name says "Agrotis" but the table puts it in Euxoa: the table wins.
    rows = [{"family": "Noctuidae", "genus": "Euxoa", "species": "Agrotis obeliscoides"}]
    taxonomy = Taxonomy.from_lineages(rows, ["species", "genus", "family"])
    genus = taxonomy.ancestor_at("genus")[taxonomy.index("Agrotis obeliscoides")]
    assert taxonomy.names[genus] == "Euxoa"


def test_descendants_mask_no_taxon_admits_nothing(moths):
    assert not moths.descendants_mask([NO_TAXON]).any()
    mask = moths.descendants_mask([NO_TAXON, moths.index("Danaus")])
    assert {moths.names[t] for t in np.flatnonzero(mask)} == {"Danaus", "Danaus plexippus", "Danaus gilippus"}
