"""`taxopost mask` says what it will do: the coverage of the taxa list (a warning with the numbers
when it is low), the winner-changes-only option, and the hint for a CSV read without --taxa-column."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taxopost.cli import main
from tests.cli.test_files import LABELS, SCORES, TAXONOMY, read_csv


@pytest.fixture
def files(tmp_path):
    (tmp_path / "taxonomy.csv").write_text(TAXONOMY)
    (tmp_path / "labels.json").write_text(json.dumps(LABELS))
    np.save(tmp_path / "scores.npy", SCORES)
    return tmp_path


def mask(files, taxa_list: str, *extra: str) -> list[str]:
    return [
        "mask",
        "--taxonomy", str(files / "taxonomy.csv"),
        "--category-map", str(files / "labels.json"),
        "--scores", str(files / "scores.npy"),
        "--taxa-list", str(files / taxa_list),
        "--output", str(files / "masked.csv"),
        *extra,
    ]  # fmt: skip


def test_a_list_keeping_few_classes_and_little_mass_is_warned_about(files, capsys):
    (files / "one.txt").write_text("Catocala ilia\n")  # 1 of 5 classes; 0.1 + 0.01 + 0.3 of 3.0
    assert main(mask(files, "one.txt")) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: the taxa list keeps 1 of 5 classes (20.0%), 13.7% of the probability mass of 3 predictions" in err
    assert "below 25% of the classes and 50% of the probability mass" in err
    assert "3 rows, kept 1 of 5 classes (20.0%), 13.7% of the probability mass of 3 predictions" in err


def test_a_list_keeping_enough_prints_its_coverage_without_a_warning(files, capsys):
    (files / "nymphalids.txt").write_text("Nymphalidae\n")  # 4 of 5 classes; 0.9 + 0.99 + 0.7 of 3.0
    assert main(mask(files, "nymphalids.txt")) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "taxopost: warning" not in err and "kept 4 of 5 classes (80.0%), 86.3% of the probability mass" in err


def test_winner_changes_only_counts_only_rows_whose_winner_moves(files, capsys):
    (files / "regional.txt").write_text("Vanessa\nDanaus\n")
    scores = np.array([[0.5, 0.2, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1, 0.6]], dtype=np.float32)
    np.save(files / "scores.npy", scores)  # row 0 stays on Vanessa atalanta; row 1 leaves Catocala ilia
    assert main(mask(files, "regional.txt")) == 0
    assert [row["changed"] for row in read_csv(files / "masked.csv")] == ["true", "true"]
    assert main(mask(files, "regional.txt", "--winner-changes-only")) == 0
    rows = read_csv(files / "masked.csv")
    assert [(row["taxon"], row["changed"]) for row in rows] == [
        ("Vanessa atalanta", "false"),
        ("Vanessa atalanta", "true"),
    ]
    assert "1 rows changed" in capsys.readouterr().err


CHECKLIST = "family,genus,binomen\nNymphalidae,Vanessa,Vanessa cardui\nNymphalidae,Danaus,Danaus plexippus\n"


def test_a_csv_read_without_its_column_gets_a_hint_naming_the_option(files, capsys):
    (files / "checklist.csv").write_text(CHECKLIST)
    assert main(mask(files, "checklist.csv")) == 2
    err = capsys.readouterr().err
    assert "none of its 3 entries matches a taxon" in err
    assert "it looks like a table: name the column holding the taxa with --taxa-column NAME" in err
    assert "(its columns: family, genus, binomen)" in err
    assert main(mask(files, "checklist.csv", "--taxa-column", "binomen")) == 0


@pytest.mark.database
def test_import_taxa_list_takes_the_same_option_and_gives_the_same_hint(db, files, capsys):
    from taxopost.taxa.models import TaxaList

    assert main(["import", "taxonomy", str(files / "taxonomy.csv")]) == 0
    (files / "checklist.csv").write_text(CHECKLIST)
    assert main(["import", "taxa-list", str(files / "checklist.csv"), "--name", "regional"]) == 2
    assert "name the column holding the taxa with --taxa-column NAME" in capsys.readouterr().err
    assert not TaxaList.objects.exists()
    assert (
        main(["import", "taxa-list", str(files / "checklist.csv"), "--name", "regional", "--taxa-column", "binomen"])
        == 0
    )
    assert sorted(TaxaList.objects.get(name="regional").taxa.values_list("name", flat=True)) == [
        "Danaus plexippus",
        "Vanessa cardui",
    ]
    assert main(["import", "taxa-list", "--help"]) == 0
    assert "--taxa-column" in capsys.readouterr().out
    # the former name still works, undocumented
    assert main(["import", "taxa-list", str(files / "checklist.csv"), "--name", "again", "--column", "binomen"]) == 0


@pytest.mark.database
def test_a_partly_resolved_table_warns_with_the_hint(db, files, capsys):
    assert main(["import", "taxonomy", str(files / "taxonomy.csv")]) == 0
    (files / "names.csv").write_text("name\nVanessa cardui\nDanaus plexippus\n")  # the header matches no taxon
    assert main(["import", "taxa-list", str(files / "names.csv"), "--name", "regional"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "1 entries match no taxon and are ignored: ['name']; it looks like a table" in err


@pytest.mark.shared_data
def test_the_bci_checklist_keeps_19_of_the_ami_classes_and_says_so(shared_data, tmp_path, capsys):
    from taxopost.core.simulate import simulate_outputs
    from taxopost.io import read_category_map, read_taxonomy

    ami = shared_data / "ami"
    taxonomy = read_taxonomy(ami / "taxonomy_map.csv", id_column="speciesKey")
    category_map = read_category_map(ami / "ne-america_category_map.json", taxonomy)
    np.save(tmp_path / "scores.npy", simulate_outputs(category_map, 300, seed=5).scores())
    args = [
        "mask",
        "--taxonomy", str(ami / "taxonomy_map.csv"), "--id-column", "speciesKey",
        "--category-map", str(ami / "ne-america_category_map.json"),
        "--scores", str(tmp_path / "scores.npy"),
        "--taxa-list", str(ami / "bci_lepidoptera_checklist.csv"), "--taxa-column", "Current_valid_binomen",
        "--output", str(tmp_path / "out.csv"),
    ]  # fmt: skip
    assert main(args) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: the taxa list keeps 19 of 2,497 classes (0.8%)" in err
    assert "below 25% of the classes and 50% of the probability mass" in err
    args.remove("--taxa-column")
    args.remove("Current_valid_binomen")
    assert main(args) == 2
    assert "--taxa-column NAME (its columns: sort, Superfam_#, subfam_#" in " ".join(capsys.readouterr().err.split())
