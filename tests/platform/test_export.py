"""``taxopost export occurrences``: taxopost's columns and the Darwin Core occurrence table."""

from __future__ import annotations

import csv

import pytest

from taxopost.cli import main
from taxopost.observations.export import DWC_COLUMNS
from taxopost.observations.identifications import import_identifications
from taxopost.observations.predictions import import_predictions
from taxopost.taxa.models import Taxon
from tests.conftest import require
from tests.platform.conftest import vector, write_predictions
from tests.platform.helpers import run


def _rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def processed(platform, tmp_path):
    """Roll-up and size filter on station-1, an expert identification of one occurrence, GBIF keys."""
    Taxon.objects.filter(name="Vanessa").update(external_ids=["1898286"])
    Taxon.objects.filter(name="Danaus plexippus").update(external_ids=["inat:48662", "5133088"])
    run("rank_rollup", platform, {"thresholds": {"species": 0.9, "genus": 0.6}})
    run("small_size_filter", platform)
    (tmp_path / "ids.csv").write_text(
        "occurrence,taxon,who,created_at\nocc-catocala,Catocala relicta,A. Expert,2024-08-01T10:00:00Z\n"
    )
    import_identifications(tmp_path / "ids.csv")
    return platform


def test_the_export_carries_external_ids_rank_capture_set_and_times(processed, tmp_path):
    assert main(["export", "occurrences", "--capture-set", "Station 1", "--output", str(tmp_path / "o.csv")]) == 0
    rows = {row["occurrence"]: row for row in _rows(tmp_path / "o.csv")}
    assert len(rows) == 6 and {row["capture_set"] for row in rows.values()} == {"station-1"}
    vanessa = rows["occ-vanessa"]
    assert (vanessa["determination"], vanessa["rank"], vanessa["gbif_key"]) == ("Vanessa", "genus", "1898286")
    assert vanessa["provenance"] == vanessa["decided_by"] + " <- moths-v1"
    monarch = rows["occ-confident"]
    assert monarch["taxon_external_ids"] == "inat:48662;5133088" and monarch["gbif_key"] == "5133088"
    assert monarch["first_seen"].startswith("2024-07-01 22:00:00") and monarch["last_seen"] == monarch["first_seen"]
    assert monarch["determined_at"]  # when its classification was written
    assert rows["occ-tiny"]["determination"] == "Not identifiable"
    expert = rows["occ-catocala"]
    assert expert["decided_by"] == "identification" and expert["determined_at"].startswith("2024-08-01 10:00:00")


def test_an_identification_without_a_date_is_exported_without_one(processed, tmp_path):
    """Undated identifications sort before every dated one: that epoch is no date to publish."""
    (tmp_path / "undated.csv").write_text("occurrence,taxon,who\nocc-vanessa,Vanessa cardui,B. Expert\n")
    import_identifications(tmp_path / "undated.csv")
    for layout, column in (("occurrences", "determined_at"), ("dwc", "dateIdentified")):
        output = tmp_path / f"{layout}.csv"
        args = ["export", "occurrences", "--capture-set", "station-1", "--format", layout, "--output", str(output)]
        assert main(args) == 0
        keys = {row.get("occurrence") or row["occurrenceID"].rsplit(":", 1)[-1]: row for row in _rows(output)}
        assert keys["occ-vanessa"][column] == "" and keys["occ-catocala"][column].startswith("2024-08-01")


def test_the_darwin_core_table_is_what_a_gbif_publisher_maps(processed, tmp_path):
    output = tmp_path / "dwc.csv"
    assert (
        main(["export", "occurrences", "--capture-set", "station-1", "--format", "dwc", "--output", str(output)]) == 0
    )
    rows = _rows(output)
    assert tuple(rows[0]) == DWC_COLUMNS
    by_id = {row["occurrenceID"]: row for row in rows}
    assert "default:occ-tiny" not in by_id  # "Not identifiable" is no scientificName: left out
    assert len(rows) == 5 and all(key.startswith("default:occ-") for key in by_id)
    assert {row["basisOfRecord"] for row in rows} == {"MachineObservation"}
    assert {(row["occurrenceStatus"], row["individualCount"], row["eventID"]) for row in rows} == {
        ("present", "1", "station-1")
    }
    vanessa = by_id["default:occ-vanessa"]
    assert (vanessa["scientificName"], vanessa["taxonRank"], vanessa["taxonID"]) == ("Vanessa", "genus", "1898286")
    assert (vanessa["order"], vanessa["family"], vanessa["genus"]) == ("Lepidoptera", "Nymphalidae", "Vanessa")
    assert vanessa["identificationVerificationStatus"] == "unverified"
    assert vanessa["identifiedBy"] == "moths-v1 (then taxopost rank_rollup)"
    assert vanessa["identificationRemarks"].startswith("score 0.800; provenance rank_rollup-")
    assert vanessa["eventDate"] == "2024-07-01T22:00:00+00:00"
    assert by_id["default:occ-confident"]["taxonID"] == "5133088"  # the GBIF key, not the iNaturalist one
    expert = by_id["default:occ-catocala"]
    assert (expert["scientificName"], expert["identifiedBy"]) == ("Catocala relicta", "A. Expert")
    assert expert["identificationVerificationStatus"] == "verified"
    assert expert["dateIdentified"] == "2024-08-01T10:00:00+00:00"


@pytest.mark.parametrize(
    ("output", "layout", "message"),
    [
        ("o.xlsx", "occurrences", "--output='{}': cannot write '.xlsx' files: give a .csv or .parquet file"),
        ("o", "occurrences", "--output='{}': cannot write a file without an extension: give a .csv or .parquet file"),
        ("o.parquet", "dwc", "--output='{}': cannot write '.parquet' files: give a .csv file"),
        ("o.csv", "gbif", "--format='gbif': must be one of occurrences, dwc"),
    ],
)
def test_an_unknown_output_type_is_refused_and_nothing_written(platform, tmp_path, capsys, output, layout, message):
    path = tmp_path / output
    assert main(["export", "occurrences", "--capture-set", "station-1", "--format", layout, "--output", str(path)]) == 2
    assert capsys.readouterr().err.strip() == "taxopost: error: " + message.format(path)
    assert list(tmp_path.iterdir()) == [tmp_path / "predictions.jsonl"]


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (["export", "antenna", "--capture-set", "station-1", "--output", "{}/r.csv"], "'.csv' files: give a .json"),
        (["rollup", "--scores", "s.npy", "--output", "{}/r.xlsx"], "'.xlsx' files: give a .csv or .parquet or .json"),
        (["mask", "--scores", "s.npy", "--taxa-list", "t.txt", "--output", "{}/m.xls"], "'.xls' files: give a .csv"),
        (["calibrate", "--scores", "s.npy", "--ground-truth", "g.csv", "--output", "{}/cal.yaml"],
         "'.yaml' files: give a .json file"),
    ],
)  # fmt: skip
def test_every_output_refuses_a_file_type_it_does_not_write(platform, tmp_path, capsys, args, refused):
    assert main([arg.format(tmp_path) for arg in args]) == 2
    assert refused.format(tmp_path) in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [tmp_path / "predictions.jsonl"]


def _second_capture_set(tmp_path) -> None:
    """station-2: one occurrence scored 0.9 (a float32 in the classifier's vector), its taxon without external ids."""
    rows = [("occ-second", "img-9.jpg", [10, 10, 400, 400], vector(Noctua_pronuba=0.9))]
    import_predictions(write_predictions(tmp_path / "second.jsonl", rows, capture_set="station-2"))


def test_the_parquet_schema_is_the_same_whatever_the_capture_set_holds(processed, tmp_path):
    import pyarrow.parquet as pq

    _second_capture_set(tmp_path)
    schemas = {}
    for name in ("station-1", "station-2"):
        output = tmp_path / f"{name}.parquet"
        assert main(["export", "occurrences", "--capture-set", name, "--output", str(output)]) == 0
        schemas[name] = pq.read_schema(output)
    assert schemas["station-1"] == schemas["station-2"]
    types = {field.name: str(field.type) for field in schemas["station-2"]}
    assert types["taxon_external_ids"] == types["gbif_key"] == "string"  # empty in station-2, not type null
    assert types["score"] == "double" and types["first_seen"] == "timestamp[us, tz=UTC]"
    table = pq.read_table(tmp_path / "station-2.parquet").to_pylist()
    assert (table[0]["taxon_external_ids"], table[0]["gbif_key"], table[0]["score"]) == (None, None, 0.9)


def test_a_float32_score_is_written_as_its_shortest_decimal(platform, tmp_path):
    _second_capture_set(tmp_path)
    assert main(["export", "occurrences", "--capture-set", "station-2", "--output", str(tmp_path / "o.csv")]) == 0
    (row,) = _rows(tmp_path / "o.csv")
    assert (row["determination"], row["score"]) == ("Noctua pronuba", "0.9")


def test_an_inaturalist_taxon_id_is_never_published_as_a_gbif_key(db, shared_data, tmp_path):
    """The real iNaturalist sample, a model whose labels are its taxon ids: the three exports name
    the taxa by ``inat:`` id and give no GBIF key (both are bare digits in the stored taxonomy)."""
    import json

    inat = require(shared_data / "inat" / "taxonomy.csv", "the iNaturalist taxonomy sample")
    assert main(["import", "taxonomy", str(inat)]) == 0
    (tmp_path / "labels.json").write_text(json.dumps(["7", "14", "47129"]))
    assert main(["import", "category-map", str(tmp_path / "labels.json"), "--algorithm", "birds"]) == 0
    rows = [("occ-bird", "img-1.jpg", [10, 10, 400, 400], [0.9, 0.06, 0.04])]
    import_predictions(write_predictions(tmp_path / "p.jsonl", rows, capture_set="marsh", algorithm="birds"))
    assert Taxon.objects.get(name="Aramus guarauna").external_ids == ["7", "inat:7", "leaf_class_id:1"]

    assert main(["export", "occurrences", "--capture-set", "marsh", "--output", str(tmp_path / "o.csv")]) == 0
    (row,) = _rows(tmp_path / "o.csv")
    assert (row["determination"], row["taxon_external_ids"], row["gbif_key"]) == (
        "Aramus guarauna", "7;inat:7;leaf_class_id:1", ""
    )  # fmt: skip
    args = ["export", "occurrences", "--capture-set", "marsh", "--format", "dwc", "--output", str(tmp_path / "d.csv")]
    assert main(args) == 0
    assert _rows(tmp_path / "d.csv")[0]["taxonID"] == "inat:7"
    assert main(["export", "antenna", "--capture-set", "marsh", "--output", str(tmp_path / "r.json")]) == 0
    (algorithm,) = json.loads((tmp_path / "r.json").read_text())["algorithms"].values()
    assert [(e["label"], e["gbif_key"]) for e in algorithm["category_map"]["data"]] == [
        ("7", None), ("14", None), ("47129", None)
    ]  # fmt: skip
