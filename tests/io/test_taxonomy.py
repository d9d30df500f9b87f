"""read_taxonomy: lineage CSV, iNaturalist and Darwin Core formats, and every malformed input."""

from __future__ import annotations

import pytest

from taxopost.core.taxonomy import NO_TAXON
from taxopost.errors import InputError
from taxopost.io import read_taxonomy
from taxopost.io.taxonomy import find_gbif_key, gbif_key

from .conftest import DATA

LINEAGE = """family,genus,species
Nymphalidae,Vanessa,Vanessa atalanta
Nymphalidae,Vanessa,Vanessa cardui
Erebidae,,Catocala ilia
"""

INAT = """parent_taxon_id,taxon_id,rank_level,leaf_class_id,iconic_class_id,spatial_class_id,name
,1,70,,,1,Animalia
1,2,60,,,2,Chordata
2,355675,57,,,3,Vertebrata
355675,3,50,,,4,Aves
3,4,40,,,5,Gruiformes
4,5,30,,,6,Aramidae
5,6,20,,,7,Aramus
6,7,10,1,1,8,Aramus guarauna
"""


def parent_name(taxonomy, name):
    parent = int(taxonomy.parents[taxonomy.index(name)])
    return None if parent == NO_TAXON else taxonomy.names[parent]


# -- lineage CSV -------------------------------------------------------------------------------


def test_read_taxonomy_lineage_builds_ranks_and_parents(write):
    taxonomy = read_taxonomy(write("t.csv", LINEAGE))
    assert taxonomy.n_taxa == 6
    assert taxonomy.rank_of(taxonomy.index("Vanessa atalanta")) == "species"
    assert parent_name(taxonomy, "Vanessa atalanta") == "Vanessa"
    assert parent_name(taxonomy, "Vanessa") == "Nymphalidae"


def test_read_taxonomy_lineage_empty_cell_skips_the_rank(write):
    taxonomy = read_taxonomy(write("t.csv", LINEAGE))
    assert parent_name(taxonomy, "Catocala ilia") == "Erebidae"


def test_read_taxonomy_lineage_rank_columns_in_any_case(write):
    taxonomy = read_taxonomy(write("t.csv", "Family,GENUS,Species\nErebidae,Catocala,Catocala ilia\n"))
    assert taxonomy.rank_of(taxonomy.index("Catocala")) == "genus"


def test_read_taxonomy_lineage_tab_separated(write):
    taxonomy = read_taxonomy(write("t.tsv", LINEAGE.replace(",", "\t")))
    assert taxonomy.n_taxa == 6


def test_read_taxonomy_lineage_id_column_goes_to_the_finest_taxon(write):
    path = write("t.csv", "speciesKey,species,genus\n11,Vanessa atalanta,Vanessa\n12,Vanessa cardui,Vanessa\n")
    taxonomy = read_taxonomy(path, id_column="speciesKey")
    assert taxonomy.find("11") == taxonomy.index("Vanessa atalanta")
    assert taxonomy.find("Vanessa") == taxonomy.index("Vanessa")


def test_read_taxonomy_lineage_same_species_with_two_ids_carries_both(write):
    path = write("t.csv", "speciesKey,species,genus\n11,Haploa lecontei,Haploa\n99,Haploa lecontei,Haploa\n")
    taxonomy = read_taxonomy(path, id_column="speciesKey")
    assert taxonomy.find("11") == taxonomy.find("99") == taxonomy.index("Haploa lecontei")
    assert taxonomy.n_taxa == 2


def test_read_taxonomy_lineage_missing_id_column_is_named(write):
    path = write("t.csv", LINEAGE)
    with pytest.raises(InputError, match=r"t\.csv.*id_column='speciesKey': not a column"):
        read_taxonomy(path, id_column="speciesKey")


def test_read_taxonomy_lineage_extra_column_is_named(write):
    path = write("t.csv", "speciesKey,species,genus\n11,Vanessa atalanta,Vanessa\n")
    with pytest.raises(InputError, match=r"t\.csv:1: columns=\['speciesKey'\]: not rank names.*--id-column"):
        read_taxonomy(path)


def test_read_taxonomy_unknown_header_lists_the_formats(write):
    path = write("t.csv", "a,b\n1,2\n")
    with pytest.raises(InputError, match=r"columns=\['a', 'b'\]: no column is a rank name.*iNaturalist.*Darwin Core"):
        read_taxonomy(path)


def test_read_taxonomy_partial_darwin_core_header_names_what_is_missing(write):
    path = write("t.csv", "taxonID,scientificName,taxonRank\n1,Animalia,kingdom\n")
    with pytest.raises(InputError, match=r"looks like the Darwin Core format but lacks \['parentNameUsageID'\]"):
        read_taxonomy(path)


def test_read_taxonomy_lineage_two_columns_of_one_rank(write):
    path = write("t.csv", "genus,Genus,species\nA,A,A b\n")
    with pytest.raises(InputError, match=r"two columns name the same rank"):
        read_taxonomy(path)


def test_read_taxonomy_lineage_name_with_two_lineages_names_file_and_line(write):
    path = write("t.csv", "family,genus,species\nF1,G,G a\nF2,G,G b\n")
    with pytest.raises(InputError, match=r"t\.csv:3: genus='G': one name with two lineages"):
        read_taxonomy(path)


def test_read_taxonomy_lineage_line_numbers_count_blank_lines(write):
    path = write("t.csv", "family,genus,species\n\nF1,G,G a\n\n\nF2,G,G b\n")
    with pytest.raises(InputError, match=r"t\.csv:6: genus='G'.*on line 3"):
        read_taxonomy(path)


def test_read_taxonomy_lineage_row_with_no_name(write):
    path = write("t.csv", "family,genus,species\nF,G,G a\n , ,\n")
    with pytest.raises(InputError, match=r"t\.csv:3: row=.*names no taxon"):
        read_taxonomy(path)


def test_read_taxonomy_header_only_has_no_taxa(write):
    with pytest.raises(InputError, match=r"t\.csv.*has a header but no taxa"):
        read_taxonomy(write("t.csv", "family,genus,species\n"))


# -- malformed files ---------------------------------------------------------------------------


def test_read_taxonomy_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"file=.*nowhere\.csv'?: no such file"):
        read_taxonomy(tmp_path / "nowhere.csv")


def test_read_taxonomy_empty_file(write):
    with pytest.raises(InputError, match=r"t\.csv'?: is empty"):
        read_taxonomy(write("t.csv", ""))


def test_read_taxonomy_ragged_row_names_the_line(write):
    path = write("t.csv", "family,genus,species\nF,G,G a\nF,G\n")
    with pytest.raises(InputError, match=r"t\.csv:3: row=\['F', 'G'\]: has 2 cells but the header has 3"):
        read_taxonomy(path)


def test_read_taxonomy_truncated_quote_is_malformed(write):
    path = write("t.csv", 'family,genus,species\nF,G,"G a\n')
    with pytest.raises(InputError, match=r"t\.csv.*malformed CSV"):
        read_taxonomy(path)


def test_read_taxonomy_bad_utf8_names_the_line(write):
    path = write("t.csv", b"family,genus,species\nF,G,G a\nF,G,G \xff\xfe\n")
    with pytest.raises(InputError, match=r"t\.csv:3: .*not UTF-8"):
        read_taxonomy(path)


def test_read_taxonomy_binary_garbage(write):
    path = write("t.csv", b"family,genus,species\n\x00\x01\x02,\x03\n")
    with pytest.raises(InputError, match=r"t\.csv:2: .*NUL byte"):
        read_taxonomy(path)


def test_read_taxonomy_repeated_header_column(write):
    with pytest.raises(InputError, match=r"header=\['genus'\]: a column name appears more than once"):
        read_taxonomy(write("t.csv", "genus,genus\nA,A\n"))


# -- iNaturalist -------------------------------------------------------------------------------


def test_read_taxonomy_inat_ranks_from_rank_level(write):
    taxonomy = read_taxonomy(write("taxonomy.csv", INAT))
    ranks = {name: taxonomy.rank_of(taxonomy.index(name)) for name in ("Animalia", "Vertebrata", "Aramus guarauna")}
    assert ranks == {"Animalia": "kingdom", "Vertebrata": "subphylum", "Aramus guarauna": "species"}


def test_read_taxonomy_inat_parents_by_id_and_taxon_id_is_external_id(write):
    taxonomy = read_taxonomy(write("taxonomy.csv", INAT))
    assert parent_name(taxonomy, "Aves") == "Vertebrata"
    assert taxonomy.find("355675") == taxonomy.index("Vertebrata")


def test_read_taxonomy_inat_ids_are_namespaced_beside_the_bare_ones(write):
    """A bare iNaturalist id resolves labels; its ``inat:`` copy says whose it is, so it is never a GBIF key."""
    taxonomy = read_taxonomy(write("taxonomy.csv", INAT))
    species = taxonomy.index("Aramus guarauna")
    ids = sorted(key for key, taxon in taxonomy.external_ids.items() if taxon == species)
    assert ids == ["7", "inat:7", "leaf_class_id:1"]
    assert taxonomy.find("inat:355675") == taxonomy.index("Vertebrata")
    assert gbif_key(ids) is None and find_gbif_key(taxonomy, "7") == NO_TAXON


def test_read_taxonomy_inat_by_class_id_marks_the_class_ids_too(write):
    taxonomy = read_taxonomy(write("taxonomy.csv", INAT), id_column="leaf_class_id")
    species = taxonomy.index("Aramus guarauna")
    ids = sorted(key for key, taxon in taxonomy.external_ids.items() if taxon == species)
    assert ids == ["1", "inat:7", "leaf_class_id:1"] and taxonomy.find("1") == species
    assert gbif_key(ids) is None and find_gbif_key(taxonomy, "1") == NO_TAXON
    assert taxonomy.find("7") == NO_TAXON  # the bare taxon ids are not kept in this reading


def test_gbif_keys_of_lineage_and_darwin_core_files_stay_gbif_keys(write):
    lineage = read_taxonomy(write("t.csv", "speciesKey,genus,species\n1898286,Vanessa,Vanessa atalanta\n"),
                            id_column="speciesKey")  # fmt: skip
    assert find_gbif_key(lineage, "1898286") == lineage.index("Vanessa atalanta")
    darwin_core = read_taxonomy(DATA / "gbif_taxon.tsv")
    assert find_gbif_key(darwin_core, "1898295") == darwin_core.find("1898295") != NO_TAXON
    assert find_gbif_key(darwin_core, "Vanessa atalanta") == NO_TAXON  # a name is no key
    assert gbif_key(["inat:48662", "48662", "5133088"]) == "5133088"  # a taxon merged from both sources
    assert gbif_key(["leaf_class_id:3", "abc", "3"]) is None
    assert gbif_key(["col:123", "123"]) == "123"  # only iNaturalist's namespaces claim a number
    assert gbif_key(["\u00b2", "12"]) == "12" and find_gbif_key(lineage, "\u00b2") == NO_TAXON  # "²" is no key


def test_read_taxonomy_inat_parent_after_child(write):
    lines = INAT.splitlines()
    taxonomy = read_taxonomy(write("taxonomy.csv", "\n".join([lines[0], *reversed(lines[1:])])))
    assert parent_name(taxonomy, "Aramus guarauna") == "Aramus"


def test_read_taxonomy_inat_ids_written_as_floats(write):
    taxonomy = read_taxonomy(
        write("taxonomy.csv", "parent_taxon_id,taxon_id,rank_level,name\n,1.0,70,A\n1.0,2.0,60,B\n")
    )
    assert parent_name(taxonomy, "B") == "A"
    assert taxonomy.find("2") == taxonomy.index("B")


def test_read_taxonomy_inat_unknown_rank_level_names_the_line(write):
    path = write("taxonomy.csv", "parent_taxon_id,taxon_id,rank_level,name\n,1,70,A\n1,2,65,B\n")
    with pytest.raises(InputError, match=r"taxonomy\.csv:3: rank_level='65': unknown iNaturalist rank level"):
        read_taxonomy(path)


def test_read_taxonomy_inat_unknown_parent_id(write):
    path = write("taxonomy.csv", "parent_taxon_id,taxon_id,rank_level,name\n,1,70,A\n7,2,60,B\n")
    with pytest.raises(InputError, match=r"taxonomy\.csv:3: parent_taxon_id of 'B'='7': no taxon in the file"):
        read_taxonomy(path)


def test_read_taxonomy_inat_duplicate_id(write):
    path = write("taxonomy.csv", "parent_taxon_id,taxon_id,rank_level,name\n,1,70,A\n1,1,60,B\n")
    with pytest.raises(InputError, match=r"taxonomy\.csv:3: taxon id='1': given twice: to 'A' on line 2"):
        read_taxonomy(path)


def test_read_taxonomy_inat_duplicate_name(write):
    path = write("taxonomy.csv", "parent_taxon_id,taxon_id,rank_level,name\n,1,70,A\n1,2,60,A\n")
    with pytest.raises(InputError, match=r"taxonomy\.csv:3: name='A': duplicate taxon"):
        read_taxonomy(path)


def test_read_taxonomy_inat_cycle_names_the_file(write):
    path = write("taxonomy.csv", "parent_taxon_id,taxon_id,rank_level,name\n2,1,60,A\n1,2,50,B\n")
    with pytest.raises(InputError, match=r"taxonomy\.csv:2: parent='A': the taxonomy has a cycle: A -> B -> A"):
        read_taxonomy(path)


def test_read_taxonomy_inat_parent_not_coarser(write):
    path = write("taxonomy.csv", "parent_taxon_id,taxon_id,rank_level,name\n,1,10,A\n1,2,20,B\n")
    with pytest.raises(InputError, match=r"taxonomy\.csv:3: parent of 'B'='A': a parent must be coarser"):
        read_taxonomy(path)


def test_read_taxonomy_inat_missing_name(write):
    path = write("taxonomy.csv", "parent_taxon_id,taxon_id,rank_level,name\n,1,70,\n")
    with pytest.raises(InputError, match=r"taxonomy\.csv:2: name of taxon 1='': every row needs a name"):
        read_taxonomy(path)


def test_read_taxonomy_inat_refuses_another_id_column(write):
    with pytest.raises(InputError, match=r"id_column='speciesKey': the iNaturalist format takes its ids from"):
        read_taxonomy(write("taxonomy.csv", INAT), id_column="speciesKey")


# -- Darwin Core -------------------------------------------------------------------------------


def test_read_taxonomy_darwin_core_tsv_builds_the_tree():
    taxonomy = read_taxonomy(DATA / "gbif_taxon.tsv")
    species = taxonomy.find("1898295")
    assert taxonomy.names[species] == "Vanessa atalanta (Linnaeus, 1758)"
    assert taxonomy.rank_of(species) == "species"
    assert [taxonomy.rank_of(t) for t in taxonomy.lineage(species)][-1] == "kingdom"


def test_read_taxonomy_darwin_core_synonym_row_is_a_synonym_not_a_taxon():
    taxonomy = read_taxonomy(DATA / "gbif_taxon.tsv")
    vanessa_atalanta = taxonomy.find("1898295")
    assert taxonomy.find("Papilio atalanta Linnaeus, 1758") == vanessa_atalanta
    assert taxonomy.find("Papilio atalanta") == vanessa_atalanta
    assert "Papilio atalanta Linnaeus, 1758" not in taxonomy.names
    assert taxonomy.find("4299368") == NO_TAXON


def test_read_taxonomy_darwin_core_gbif_upper_case_status_is_a_synonym():
    taxonomy = read_taxonomy(DATA / "gbif_taxon.tsv")
    assert taxonomy.find("Pyrameis") == taxonomy.find("1898286")


def test_read_taxonomy_darwin_core_canonical_name_resolves():
    taxonomy = read_taxonomy(DATA / "gbif_taxon.tsv")
    assert taxonomy.find("Vanessa atalanta") == taxonomy.find("1898295")


def test_read_taxonomy_darwin_core_doubtful_stays_a_taxon_and_tsv_quotes_are_literal():
    taxonomy = read_taxonomy(DATA / "gbif_taxon.tsv")
    assert taxonomy.names[taxonomy.find("9999999")] == '"Danaus" sp. nov.'


def test_read_taxonomy_darwin_core_csv_without_status_column(write):
    path = write(
        "taxon.csv",
        "taxonID,parentNameUsageID,acceptedNameUsageID,scientificName,taxonRank\n"
        "1,,,Vanessa,GENUS\n2,1,,Vanessa cardui,SPECIES\n3,1,2,Papilio cardui,SPECIES\n",
    )
    taxonomy = read_taxonomy(path)
    assert taxonomy.find("Papilio cardui") == taxonomy.index("Vanessa cardui")
    assert taxonomy.n_taxa == 2


def test_read_taxonomy_darwin_core_synonym_of_unknown_taxon(write):
    path = write(
        "taxon.csv",
        "taxonID,parentNameUsageID,acceptedNameUsageID,scientificName,taxonRank,taxonomicStatus\n"
        "1,,,Vanessa,genus,accepted\n3,1,42,Pyrameis,genus,synonym\n",
    )
    with pytest.raises(InputError, match=r"taxon\.csv:3: acceptedNameUsageID of 'Pyrameis'='42': no accepted taxon"):
        read_taxonomy(path)


def test_read_taxonomy_darwin_core_synonym_without_accepted_id(write):
    path = write(
        "taxon.csv",
        "taxonID,parentNameUsageID,acceptedNameUsageID,scientificName,taxonRank,taxonomicStatus\n"
        "1,,,Vanessa,genus,accepted\n3,1,,Pyrameis,genus,synonym\n",
    )
    with pytest.raises(InputError, match=r"taxon\.csv:3: acceptedNameUsageID of 'Pyrameis'='': taxonomicStatus is"):
        read_taxonomy(path)


def test_read_taxonomy_darwin_core_unknown_rank_names_line_and_value(write):
    path = write(
        "taxon.csv", "taxonID,parentNameUsageID,scientificName,taxonRank\n1,,Vanessa,genus\n2,1,V. x,unranked\n"
    )
    with pytest.raises(InputError, match=r"taxon\.csv:3: taxonRank of 'V. x'='unranked': unknown rank"):
        read_taxonomy(path)


def test_read_taxonomy_darwin_core_unknown_parent(write):
    path = write("taxon.csv", "taxonID,parentNameUsageID,scientificName,taxonRank\n2,1,Vanessa cardui,species\n")
    with pytest.raises(InputError, match=r"taxon\.csv:2: parentNameUsageID of 'Vanessa cardui'='1': no taxon"):
        read_taxonomy(path)


def test_read_taxonomy_darwin_core_missing_taxon_id(write):
    path = write("taxon.csv", "taxonID,parentNameUsageID,scientificName,taxonRank\n,,Vanessa,genus\n")
    with pytest.raises(InputError, match=r"taxon\.csv:2: taxonID='': every row needs a taxonID"):
        read_taxonomy(path)


def test_read_taxonomy_lineage_windows_line_endings_and_byte_order_mark(write):
    taxonomy = read_taxonomy(write("t.csv", "\ufeff" + LINEAGE.replace("\n", "\r\n")))
    assert parent_name(taxonomy, "Vanessa cardui") == "Vanessa"
