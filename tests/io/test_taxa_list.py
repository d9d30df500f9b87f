"""read_taxa_list: plain text and CSV column, resolution, and malformed input."""

from __future__ import annotations

import pytest

from taxopost.errors import InputError
from taxopost.io import TaxaListFile, read_taxa_list, read_taxonomy


@pytest.fixture
def taxonomy(write):
    path = write(
        "t.csv",
        "speciesKey,family,genus,species\n"
        "11,Nymphalidae,Vanessa,Vanessa atalanta\n"
        "12,Nymphalidae,Danaus,Danaus plexippus\n",
    )
    return read_taxonomy(path, id_column="speciesKey")


def test_read_taxa_list_plain_text_skips_blanks_and_comments(write, taxonomy):
    listed = read_taxa_list(write("l.txt", "# a checklist\n\n  Vanessa atalanta  \nDanaus  # the monarch\n"), taxonomy)
    assert listed.entries == ["Vanessa atalanta", "Danaus"]


def test_read_taxa_list_resolves_names_and_external_ids(write, taxonomy):
    listed = read_taxa_list(write("l.txt", "12\nVanessa\n"), taxonomy)
    assert listed.taxa == [taxonomy.index("Danaus plexippus"), taxonomy.index("Vanessa")]


def test_read_taxa_list_deduplicates_taxa_in_file_order(write, taxonomy):
    listed = read_taxa_list(write("l.txt", "Vanessa atalanta\n11\nNymphalidae\nVanessa atalanta\n"), taxonomy)
    assert listed.taxa == [taxonomy.index("Vanessa atalanta"), taxonomy.index("Nymphalidae")]
    assert len(listed.entries) == 4


def test_read_taxa_list_returns_unresolved_entries(write, taxonomy):
    listed = read_taxa_list(write("l.txt", "Vanessa atalanta\nAgrotis ipsilon\n"), taxonomy)
    assert listed == TaxaListFile(
        entries=["Vanessa atalanta", "Agrotis ipsilon"],
        taxa=[taxonomy.index("Vanessa atalanta")],
        unresolved=["Agrotis ipsilon"],
    )


def test_read_taxa_list_csv_column(write, taxonomy):
    path = write("l.csv", 'Family,Binomen,Author\nNymphalidae,Danaus plexippus ,"Linnaeus, 1758"\nNymphalidae,,x\n')
    listed = read_taxa_list(path, taxonomy, column="Binomen")
    assert listed.entries == ["Danaus plexippus"]
    assert listed.taxa == [taxonomy.index("Danaus plexippus")]


def test_read_taxa_list_missing_column_lists_the_header(write, taxonomy):
    path = write("l.csv", "Family,Binomen\nNymphalidae,Danaus plexippus\n")
    with pytest.raises(InputError, match=r"l\.csv: column='species': not a column.*\['Family', 'Binomen'\]"):
        read_taxa_list(path, taxonomy, column="species")


def test_read_taxa_list_only_comments_is_empty(write, taxonomy):
    with pytest.raises(InputError, match=r"l\.txt: taxa_list=\[\]: the taxa list is empty"):
        read_taxa_list(write("l.txt", "# nothing here\n\n"), taxonomy)


def test_read_taxa_list_empty_column_is_empty(write, taxonomy):
    with pytest.raises(InputError, match=r"l\.csv: taxa_list=\[\]: the taxa list is empty"):
        read_taxa_list(write("l.csv", "Family,Binomen\nNymphalidae,\n"), taxonomy, column="Binomen")


def test_read_taxa_list_matching_no_taxon_says_so(write, taxonomy):
    with pytest.raises(InputError, match=r"l\.txt: taxa_list=\['Zz', 'Yy'\]: none of its 2 entries matches a taxon"):
        read_taxa_list(write("l.txt", "Zz\nYy\n"), taxonomy)


def test_read_taxa_list_binary_file(write, taxonomy):
    with pytest.raises(InputError, match=r"l\.txt:2: .*NUL byte"):
        read_taxa_list(write("l.txt", b"Vanessa\n\x00\x00\n"), taxonomy)


def test_read_taxa_list_bad_utf8(write, taxonomy):
    with pytest.raises(InputError, match=r"l\.txt:2: .*not UTF-8"):
        read_taxa_list(write("l.txt", b"Vanessa\nDanaus \xe9\n"), taxonomy)


def test_read_taxa_list_ragged_csv(write, taxonomy):
    with pytest.raises(InputError, match=r"l\.csv:3: row=.*has 1 cells but the header has 2"):
        read_taxa_list(
            write("l.csv", "Family,Binomen\nNymphalidae,Danaus plexippus\nNymphalidae\n"), taxonomy, column="Binomen"
        )


def test_read_taxa_list_missing_file(tmp_path, taxonomy):
    with pytest.raises(InputError, match=r"no such file"):
        read_taxa_list(tmp_path / "l.txt", taxonomy)
