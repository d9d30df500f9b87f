"""The readers on the real files in ../shared/data (AMI, iNaturalist, CIFAR-100, BCI checklist)."""

from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest

from taxopost.io import read_category_map, read_class_indices, read_labels, read_matrix, read_taxa_list, read_taxonomy


@pytest.fixture(scope="module")
def ami(shared_data):
    return shared_data / "ami"


@pytest.fixture(scope="module")
def ami_taxonomy(ami):
    return read_taxonomy(ami / "taxonomy_map.csv", id_column="speciesKey")


@pytest.fixture(scope="module")
def ami_table(ami):
    with open(ami / "taxonomy_map.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def count_ranks(taxonomy, taxa):
    return {rank: len(set(taxonomy.ancestor_at(rank)[taxa].tolist()) - {-1}) for rank in ("species", "genus", "family")}


def test_read_taxonomy_ami_table_with_gbif_keys(ami_taxonomy, ami_table):
    all_taxa = np.arange(ami_taxonomy.n_taxa)
    assert count_ranks(ami_taxonomy, all_taxa) == {"species": 58_398, "genus": 10_921, "family": 126}
    assert all(ami_taxonomy.find(row["speciesKey"]) == ami_taxonomy.index(row["species"]) for row in ami_table)


def test_read_taxonomy_ami_species_with_two_gbif_keys(ami_taxonomy):
    # Haploa lecontei has two GBIF keys with the same lineage: one taxon carries both.
    assert ami_taxonomy.find("11713970") == ami_taxonomy.find("5114932") == ami_taxonomy.index("Haploa lecontei")


def test_read_taxonomy_ami_reads_fast(ami):
    start = time.perf_counter()
    read_taxonomy(ami / "taxonomy_map.csv", id_column="speciesKey")
    assert time.perf_counter() - start < 5.0  # about 0.6 s; this guards against quadratic behaviour


def test_read_labels_ami_category_map(ami):
    labels = read_labels(ami / "ne-america_category_map.json")
    raw = json.loads((ami / "ne-america_category_map.json").read_text())
    assert len(labels) == 2_497
    assert all(labels[index] == key for key, index in raw.items())


def test_read_category_map_ami_resolves_every_label_by_gbif_key(ami, ami_taxonomy):
    category_map = read_category_map(ami / "ne-america_category_map.json", ami_taxonomy)
    assert category_map.resolved.all()
    assert count_ranks(ami_taxonomy, category_map.class_taxa) == {"species": 2_497, "genus": 887, "family": 68}


def test_read_category_map_ami_genus_comes_from_the_table_not_the_name(ami, ami_taxonomy, ami_table):
    category_map = read_category_map(ami / "ne-america_category_map.json", ami_taxonomy)
    labels = set(category_map.labels)
    moved = [row for row in ami_table if row["speciesKey"] in labels and row["species"].split()[0] != row["genus"]]
    assert len(moved) == 16
    genus_of = ami_taxonomy.ancestor_at("genus")
    for row in moved:  # e.g. Epelis truncataria is in the genus Macaria
        assert ami_taxonomy.names[genus_of[ami_taxonomy.find(row["speciesKey"])]] == row["genus"]


def test_read_taxonomy_inat_sample_ranks_and_parents(shared_data):
    taxonomy = read_taxonomy(shared_data / "inat" / "taxonomy.csv")
    vertebrata = taxonomy.find("355675")
    assert taxonomy.names[vertebrata] == "Vertebrata"
    assert taxonomy.rank_of(vertebrata) == "subphylum"
    lineage = [(taxonomy.names[t], taxonomy.rank_of(t)) for t in taxonomy.lineage(taxonomy.index("Homo sapiens"))]
    assert lineage == [
        ("Homo sapiens", "species"),
        ("Homo", "genus"),
        ("Hominidae", "family"),
        ("Primates", "order"),
        ("Mammalia", "class"),
        ("Vertebrata", "subphylum"),
        ("Chordata", "phylum"),
        ("Animalia", "kingdom"),
    ]


def test_read_matrix_cifar100_predictions(shared_data):
    path = shared_data / "cifar100" / "densenet-bc-100_cifar100_test_predictions.npz"
    scores = read_matrix(path)
    assert scores.shape == (10_000, 100)
    assert scores.dtype == np.float32


def test_read_class_indices_cifar100_ground_truth(shared_data):
    path = shared_data / "cifar100" / "densenet-bc-100_cifar100_test_predictions.npz"
    truth = read_class_indices(path, n_classes=100)
    assert truth.shape == (10_000,)
    assert (read_matrix(path).argmax(axis=1) == truth).mean() == pytest.approx(0.754, abs=0.001)


def test_read_taxa_list_bci_checklist_by_column(ami, ami_taxonomy):
    listed = read_taxa_list(ami / "bci_lepidoptera_checklist.csv", ami_taxonomy, column="Current_valid_binomen")
    assert len(listed.entries) == 2_945  # one row per record: Antaea juturna is listed twice
    assert "Telchin atymnius" in listed.entries  # written with a trailing space
    assert len(listed.taxa) + len(set(listed.unresolved)) == len(set(listed.entries))
    assert "Megalopyge opercularis costaricensis" in listed.unresolved  # a subspecies: not in the AMI table
    assert ami_taxonomy.index("Antaea juturna") in listed.taxa
