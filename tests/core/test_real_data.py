"""The core on real label spaces: the AMI North-East America moth classifier and CIFAR-100.

Both read ../shared/data in place through the ``shared_data`` fixture (skipped on a machine
without it, failing under CI=true).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from taxopost.core import NO_TAXON, CategoryMap, Taxonomy, TaxonRecord, rank_rollup
from taxopost.core.masking import class_masking
from taxopost.core.simulate import simulate_outputs
from tests.core.reference import PlainTaxonomy, assert_matches_reference

pytestmark = pytest.mark.shared_data
MODES = ["lineage", "distribution"]


# -- AMI moths ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ami_rows(shared_data):
    with open(shared_data / "ami" / "taxonomy_map.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def ami(shared_data, ami_rows):
    """The AMI taxonomy (lineages from the table) and the classifier's category map (GBIF keys)."""
    taxonomy = Taxonomy.from_lineages(ami_rows, ["species", "genus", "family"], id_column="speciesKey")
    with open(shared_data / "ami" / "ne-america_category_map.json") as handle:
        index_of = json.load(handle)
    labels = sorted(index_of, key=index_of.__getitem__)
    assert [index_of[label] for label in labels] == list(range(len(labels)))
    return CategoryMap(labels, taxonomy)


@pytest.fixture(scope="module")
def ami_plain(ami_rows):
    """The table read plainly: each row's species -> genus -> family, keys -> species names."""
    rank: dict[str, str] = {}
    parent: dict[str, str | None] = {}
    for row in ami_rows:
        parent.setdefault(row["family"], None)
        rank[row["family"]] = "family"
        parent[row["genus"]] = row["family"]
        rank[row["genus"]] = "genus"
        parent[row["species"]] = row["genus"]
        rank[row["species"]] = "species"
    return PlainTaxonomy(rank, parent), {row["speciesKey"]: row["species"] for row in ami_rows}


def test_ami_every_class_resolves(ami):
    assert ami.n_classes == 2497
    assert ami.resolved.all()
    assert ami.unresolved == ()
    assert {ami.taxonomy.rank_of(t) for t in ami.class_taxa} == {"species"}
    assert len(set(ami.class_taxa.tolist())) == 2497


def test_ami_genera_and_families_reachable(ami):
    taxonomy = ami.taxonomy
    genera = taxonomy.ancestor_at("genus")[ami.class_taxa]
    families = taxonomy.ancestor_at("family")[ami.class_taxa]
    assert (genera != NO_TAXON).all() and (families != NO_TAXON).all()
    assert len(set(genera.tolist())) == 887
    assert len(set(families.tolist())) == 68


def test_ami_lineage_comes_from_table_not_label(ami, ami_rows):
    index_of = {label: i for i, label in enumerate(ami.labels)}
    moved = [row for row in ami_rows if row["speciesKey"] in index_of and row["genus"] != row["species"].split()[0]]
    assert len(moved) == 16
    taxonomy = ami.taxonomy
    genus_of = taxonomy.ancestor_at("genus")
    for row in moved:
        taxon = ami.class_taxa[index_of[row["speciesKey"]]]
        assert taxonomy.names[taxon] == row["species"]
        assert taxonomy.names[genus_of[taxon]] == row["genus"], row
        assert taxonomy.names[taxonomy.ancestor_at("family")[taxon]] == row["family"], row


@pytest.fixture(scope="module")
def ami_outputs(ami):
    return simulate_outputs(ami, 3000, seed=11)


@pytest.mark.parametrize("mode", MODES)
def test_ami_rollup_of_simulated_outputs_agrees_with_reference(ami, ami_plain, ami_outputs, mode):
    plain, species_of_key = ami_plain
    scores = ami_outputs.scores()
    result = rank_rollup(scores, ami, mode=mode)
    assert len(result) == 3000
    assert result.score.dtype == np.float32
    # the simulation spreads hard rows within a genus or family: every rank gets accepted somewhere
    assert set(np.unique(result.accepted_rank).tolist()) == {-1, 0, 1, 2}
    class_names = [species_of_key[label] for label in ami.labels]
    rows = np.random.default_rng(0).choice(3000, size=150, replace=False)
    assert_matches_reference(result, scores, ami, class_names, plain, rows=rows)


def test_ami_rollup_from_logits_equals_rollup_from_scores(ami, ami_outputs):
    from_logits = rank_rollup(ami_outputs.logits, ami, mode="distribution", logits=True)
    from_scores = rank_rollup(ami_outputs.scores(), ami, mode="distribution")
    np.testing.assert_array_equal(from_logits.taxon, from_scores.taxon)
    np.testing.assert_allclose(from_logits.score, from_scores.score, rtol=1e-5)


def test_ami_masking_to_a_family(ami, ami_outputs):
    taxonomy = ami.taxonomy
    keep = ami.admitted_by([taxonomy.index("Erebidae")])
    result = class_masking(ami_outputs.logits, ami, keep, logits=True, return_scores=True)
    assert keep.sum() == int((taxonomy.ancestor_at("family")[ami.class_taxa] == taxonomy.index("Erebidae")).sum())
    assert keep[result.winner].all()
    assert (result.scores[:, ~keep] == 0).all()
    np.testing.assert_allclose(result.scores.sum(axis=1), 1.0, rtol=1e-5)


# -- CIFAR-100 ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cifar(shared_data):
    folder = shared_data / "cifar100"
    hierarchy = json.loads((folder / "hierarchy.json").read_text())
    fine, coarse_of = hierarchy["fine_labels"], hierarchy["coarse_of_fine"]
    superclasses = list(dict.fromkeys(coarse_of[label] for label in fine))
    records = [TaxonRecord(name, "superclass") for name in superclasses]
    records += [TaxonRecord(label, "class", coarse_of[label]) for label in fine]
    with np.load(folder / "densenet-bc-100_cifar100_test_predictions.npz") as data:
        predictions, truth = data["predictions"], data["ground_truth"]
    plain = PlainTaxonomy.of(records)
    return CategoryMap(fine, Taxonomy(records)), plain, predictions, truth


def test_cifar_hierarchy_is_two_ranks(cifar):
    category_map, _, predictions, _ = cifar
    assert category_map.n_classes == 100
    superclass = category_map.taxonomy.ancestor_at("superclass")[category_map.class_taxa]
    assert len(set(superclass.tolist())) == 20
    assert np.bincount(superclass).max() == 5
    assert predictions.shape == (10000, 100) and predictions.dtype == np.float32


@pytest.mark.parametrize("mode", MODES)
def test_cifar_rollup_agrees_with_reference_on_all_rows(cifar, mode):
    category_map, plain, predictions, truth = cifar
    thresholds = {"class": 0.8, "superclass": 0.6}
    result = rank_rollup(predictions, category_map, thresholds=thresholds, mode=mode)
    assert result.order == ("class", "superclass")
    assert result.score.dtype == np.float32
    # the source is the model's own argmax: DenseNet-BC-100's documented top-1 accuracy
    assert np.mean(result.source_class == truth) == pytest.approx(0.754, abs=5e-4)
    assert set(np.unique(result.accepted_rank).tolist()) == {-1, 0, 1}
    assert_matches_reference(result, predictions, category_map, category_map.labels, plain)
