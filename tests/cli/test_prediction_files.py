"""The file commands on what classifiers really emit: partial rows, MegaDetector, SpeciesNet and Antenna
files, calibrated configs, statuses, and ranks a taxonomy lacks (through ``taxopost.cli.main``)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from taxopost.cli import main
from taxopost.io.predictions.megadetector import ORIGINAL_KEY
from tests.io.samples import antenna_response, validate_megadetector

VANESSA = """family,genus,species
Nymphalidae,Vanessa,Vanessa atalanta
Nymphalidae,Vanessa,Vanessa cardui
Nymphalidae,Vanessa,Vanessa itea
Nymphalidae,Danaus,Danaus plexippus
"""
MD_RANKS = "kingdom,phylum,class,order,family,species"


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def one_line_error(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert "Traceback" not in error and len(error.splitlines()) == 1, error
    return error


@pytest.fixture
def vanessa(tmp_path: Path) -> Path:
    (tmp_path / "taxonomy.csv").write_text(VANESSA)
    (tmp_path / "labels.json").write_text(
        json.dumps(["Vanessa atalanta", "Vanessa cardui", "Vanessa itea", "Danaus plexippus"])
    )
    return tmp_path


def files_args(folder: Path, command: str, scores: str, *extra: str) -> list[str]:
    return [
        command,
        "--taxonomy",
        str(folder / "taxonomy.csv"),
        "--category-map",
        str(folder / "labels.json"),
        "--scores",
        str(folder / scores),
        *extra,
    ]


# -- partial rows ---------------------------------------------------------------------------


def test_antennas_vanessa_case_rolls_up_to_the_genus_at_0_8(vanessa, capsys):
    np.save(vanessa / "top3.npy", np.array([[0.5, 0.2, 0.1, 0.0]], np.float32))  # sums to 0.8
    assert main(files_args(vanessa, "rollup", "top3.npy", "--output", str(vanessa / "out.csv"))) == 0
    (row,) = read_csv(vanessa / "out.csv")
    assert (row["taxon"], row["rank"], row["status"]) == ("Vanessa", "genus", "rolled up")
    assert float(row["score"]) == pytest.approx(0.8)
    assert "1 rows: 0 confident, 1 rolled up, 0 no rank cleared" in capsys.readouterr().err


def test_mask_without_reweighting_goes_straight_into_rollup(vanessa):
    np.save(vanessa / "scores.npy", np.array([[0.4, 0.3, 0.1, 0.2], [0.9, 0.05, 0.05, 0.0]], np.float32))
    (vanessa / "regional.txt").write_text("Vanessa atalanta\nVanessa cardui\n")
    mask = files_args(
        vanessa,
        "mask",
        "scores.npy",
        "--taxa-list",
        str(vanessa / "regional.txt"),
        "--no-reweight",
        "--output",
        str(vanessa / "masked.csv"),
        "--output-scores",
        str(vanessa / "masked.npy"),
    )
    assert main(mask) == 0
    assert np.load(vanessa / "masked.npy").sum(axis=1) == pytest.approx([0.7, 0.95])
    assert main(files_args(vanessa, "rollup", "masked.npy", "--output", str(vanessa / "out.csv"))) == 0
    rows = read_csv(vanessa / "out.csv")
    assert [(r["taxon"], r["status"]) for r in rows] == [("Vanessa", "rolled up"), ("Vanessa atalanta", "confident")]
    assert float(rows[0]["score"]) == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("row", "hint"),
    [
        ([50, 20, 10, 0], "scores in percent"),
        ([0.9, 0.5, 0, 0], r"logits\? use --logits"),
        ([1.2, -0.2, 0, 0], "logits"),
    ],
)
def test_rows_above_one_are_refused_with_a_hint_that_fits(vanessa, capsys, row, hint):
    np.save(vanessa / "bad.npy", np.array([row], np.float32))
    assert main(files_args(vanessa, "rollup", "bad.npy", "--output", str(vanessa / "out.csv"))) == 2
    assert re.search(hint, one_line_error(capsys))
    assert not (vanessa / "out.csv").exists()


def test_a_status_per_row_and_counts_in_the_summary(vanessa, capsys):
    scores = np.array([[0.9, 0.1, 0, 0], [0.5, 0.3, 0, 0.2], [0.3, 0.1, 0, 0.3]], np.float32)
    np.save(vanessa / "scores.npy", scores)
    assert (
        main(
            files_args(
                vanessa,
                "rollup",
                "scores.npy",
                "--threshold",
                "species=0.8",
                "--threshold",
                "genus=0.7",
                "--output",
                str(vanessa / "out.csv"),
            )
        )
        == 0
    )
    assert [r["status"] for r in read_csv(vanessa / "out.csv")] == ["confident", "rolled up", "no rank cleared"]
    assert "3 rows: 1 confident, 1 rolled up, 1 no rank cleared" in capsys.readouterr().err


def test_thresholds_on_a_rank_the_taxonomy_lacks_exit_2_naming_its_ranks(vanessa, capsys):
    np.save(vanessa / "scores.npy", np.array([[0.9, 0.1, 0, 0]], np.float32))
    args = files_args(vanessa, "rollup", "scores.npy", "--threshold", "species=0.8", "--threshold", "tribe=0.5")
    assert main([*args, "--output", str(vanessa / "out.csv")]) == 2
    error = one_line_error(capsys)
    assert "thresholds=['tribe']: the taxonomy has no taxon at these ranks; its ranks: family, genus, species" in error


def test_classes_coarser_than_every_thresholded_rank_are_reported(vanessa, capsys):
    (vanessa / "labels.json").write_text(
        json.dumps(["Vanessa atalanta", "Vanessa cardui", "Vanessa", "Danaus plexippus"])
    )
    np.save(vanessa / "scores.npy", np.array([[0.5, 0.1, 0.4, 0]], np.float32))
    assert (
        main(
            files_args(
                vanessa, "rollup", "scores.npy", "--threshold", "species=0.8", "--output", str(vanessa / "out.csv")
            )
        )
        == 0
    )
    assert "1 classes resolve to a rank coarser than every thresholded rank (species)" in capsys.readouterr().err


# -- iNaturalist's vision taxonomy ----------------------------------------------------------


@pytest.mark.shared_data
def test_inaturalist_class_ids_are_refused_when_they_read_both_ways(shared_data, tmp_path, capsys):
    (tmp_path / "labels.json").write_text(json.dumps(["1", "2", "3"]))
    np.save(tmp_path / "scores.npy", np.array([[0.5, 0.3, 0.2]], np.float32))
    args = [
        "rollup",
        "--taxonomy",
        str(shared_data / "inat" / "taxonomy.csv"),
        "--category-map",
        str(tmp_path / "labels.json"),
        "--scores",
        str(tmp_path / "scores.npy"),
        "--output",
        str(tmp_path / "out.csv"),
    ]
    assert main(args) == 2
    error = one_line_error(capsys)
    assert "taxon_id (Animalia, Chordata, Aves)" in error
    assert "leaf_class_id (Aramus guarauna, Cariama cristata, Ribes californicum)" in error
    assert main([*args, "--id-column", "leaf_class_id", "--threshold", "species=0.8", "--threshold", "class=0.6"]) == 0
    (row,) = read_csv(tmp_path / "out.csv")
    assert (row["source_taxon"], row["taxon"], row["rank"]) == ("Aramus guarauna", "Aves", "class")


@pytest.mark.shared_data
def test_inaturalist_leaf_class_ids_are_detected(shared_data, tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps(["1", "2", "3", "Homo sapiens"]))  # 3 class ids and a name
    (tmp_path / "taxonomy.csv").write_text(
        (shared_data / "inat" / "taxonomy.csv")
        .read_text()
        .replace(",1,70,", ",1001,70,")
        .replace("\n1,2,", "\n1001,2,")
    )
    np.save(tmp_path / "scores.npy", np.array([[0.1, 0.1, 0.7, 0.1]], np.float32))
    args = [
        "rollup",
        "--taxonomy",
        str(tmp_path / "taxonomy.csv"),
        "--category-map",
        str(tmp_path / "labels.json"),
        "--scores",
        str(tmp_path / "scores.npy"),
        "--threshold",
        "species=0.5",
        "--output",
        str(tmp_path / "out.csv"),
    ]
    assert main(args) == 0
    assert read_csv(tmp_path / "out.csv")[0]["taxon"] == "Ribes californicum"


# -- calibrate, then roll up with its config; CIFAR-100's two ranks ---------------------------


@pytest.fixture
def cifar(shared_data: Path, tmp_path: Path) -> Path:
    hierarchy = json.loads((shared_data / "cifar100" / "hierarchy.json").read_text())
    with open(tmp_path / "taxonomy.csv", "w") as handle:
        handle.write("superclass,class\n")
        handle.writelines(f"{hierarchy['coarse_of_fine'][fine]},{fine}\n" for fine in hierarchy["fine_labels"])
    (tmp_path / "labels.json").write_text(json.dumps(hierarchy["fine_labels"]))
    return tmp_path


def cifar_args(shared_data: Path, folder: Path, command: str, *extra: str) -> list[str]:
    npz = str(shared_data / "cifar100" / "densenet-bc-100_cifar100_test_predictions.npz")
    return [
        command,
        "--taxonomy",
        str(folder / "taxonomy.csv"),
        "--category-map",
        str(folder / "labels.json"),
        "--scores",
        npz,
        *extra,
    ]


@pytest.mark.shared_data
def test_rollup_applies_what_calibrate_writes(shared_data, cifar):
    npz = str(shared_data / "cifar100" / "densenet-bc-100_cifar100_test_predictions.npz")
    calibrate = cifar_args(
        shared_data,
        cifar,
        "calibrate",
        "--ground-truth",
        npz,
        "--target-precision",
        "0.9",
        "--output",
        str(cifar / "cal.json"),
    )
    assert main(calibrate) == 0
    config = json.loads((cifar / "cal.json").read_text())
    assert (
        main(
            cifar_args(
                shared_data, cifar, "rollup", "--config", str(cifar / "cal.json"), "--output", str(cifar / "out.csv")
            )
        )
        == 0
    )
    rows = read_csv(cifar / "out.csv")
    assert len(rows) == 10_000 and {f"{rank}_score" for rank in config["order"]} <= set(rows[0])
    for row in rows:
        if row["status"] == "rolled up":
            assert float(row["score"]) >= config["thresholds"][row["rank"]]
    assert (
        main(
            cifar_args(
                shared_data,
                cifar,
                "rollup",
                "--config",
                str(cifar / "cal.json"),
                "--mode",
                "distribution",
                "--output",
                str(cifar / "out.csv"),
            )
        )
        == 0
    )


@pytest.mark.shared_data
def test_cifar_default_thresholds_exit_2_in_rollup_and_evaluate(shared_data, cifar, capsys):
    assert main(cifar_args(shared_data, cifar, "rollup", "--output", str(cifar / "out.csv"))) == 2
    assert "its ranks: superclass, class" in one_line_error(capsys)
    (cifar / "pipelines.json").write_text(json.dumps([{"name": "r", "steps": [{"task": "rank_rollup"}]}]))
    npz = str(shared_data / "cifar100" / "densenet-bc-100_cifar100_test_predictions.npz")
    evaluate = cifar_args(
        shared_data,
        cifar,
        "evaluate",
        "--ground-truth",
        npz,
        "--pipelines",
        str(cifar / "pipelines.json"),
        "--output-dir",
        str(cifar / "report"),
    )
    assert main(evaluate) == 2
    assert "the taxonomy has no taxon at these ranks; its ranks: superclass, class" in one_line_error(capsys)


def test_a_config_file_that_is_not_json_exits_2(vanessa, capsys):
    (vanessa / "cal.json").write_text("{thresholds")
    np.save(vanessa / "scores.npy", np.array([[0.9, 0.1, 0, 0]], np.float32))
    assert (
        main(
            files_args(
                vanessa,
                "rollup",
                "scores.npy",
                "--config",
                str(vanessa / "cal.json"),
                "--output",
                str(vanessa / "o.csv"),
            )
        )
        == 2
    )
    assert "--config=" in one_line_error(capsys)


# -- --predictions: MegaDetector, SpeciesNet, Antenna -----------------------------------------


@pytest.mark.shared_data
def test_rollup_on_megadetector_example_writes_a_valid_megadetector_file(shared_data, tmp_path, capsys):
    example = shared_data / "megadetector" / "format_example.json"
    args = [
        "rollup",
        "--predictions",
        str(example),
        "--lineage-ranks",
        MD_RANKS,
        "--threshold",
        "species=0.95",
        "--threshold",
        "family=0.9",
    ]
    assert main([*args, "--output", str(tmp_path / "out.json")]) == 0
    validate_megadetector(tmp_path / "out.json")
    det = json.loads((tmp_path / "out.json").read_text())["images"][0]["detections"][0]
    assert det[ORIGINAL_KEY][0] == ["3", 0.901] and len(det["classifications"]) == 1
    assert main([*args, "--output", str(tmp_path / "out.csv")]) == 0
    (row,) = read_csv(tmp_path / "out.csv")
    assert (row["detection"], row["taxon"], row["status"]) == ("images[0].detections[0]", "ursidae", "rolled up")


@pytest.mark.shared_data
def test_a_predictions_file_is_written_back_in_place_where_other_inputs_are_refused(shared_data, tmp_path):
    path = tmp_path / "md.json"
    path.write_bytes((shared_data / "megadetector" / "format_example.json").read_bytes())
    args = ["rollup", "--predictions", str(path), "--lineage-ranks", MD_RANKS, "--threshold", "species=0.95"]
    assert main([*args, "--output", str(path)]) == 0  # the re-run workflow: its own step is replaced next time
    validate_megadetector(path)
    assert main([*args, "--output", str(path)]) == 0
    validate_megadetector(path)


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("edit", "field", "value"),
    [
        (lambda det: det.pop("bbox"), "bbox", "None"),
        (lambda det: det.__setitem__("bbox", None), "bbox", "None"),
        (lambda det: det.pop("conf"), "conf", "None"),
        (lambda det: det.__setitem__("conf", 1), "conf", "1"),
    ],
    ids=["no bbox", "null bbox", "no conf", "integer conf"],
)
@pytest.mark.parametrize("command", ["rollup", "mask"])
def test_a_megadetector_file_its_validator_refuses_is_not_written_back_but_still_read(
    shared_data, tmp_path, capsys, edit, field, value, command
):
    doc = json.loads((shared_data / "megadetector" / "format_example.json").read_text())
    edit(doc["images"][1]["detections"][0])
    path = tmp_path / "md.json"
    path.write_text(json.dumps(doc))
    (tmp_path / "list.txt").write_text("canidae\ncervidae\n")
    task = ["--threshold", "species=0.95"] if command == "rollup" else ["--taxa-list", str(tmp_path / "list.txt")]
    args = [command, "--predictions", str(path), "--lineage-ranks", MD_RANKS, *task]
    assert main([*args, "--output", str(tmp_path / "out.json")]) == 2
    error = one_line_error(capsys)
    assert f"md.json: images[1].detections[0].{field}={value}: " in error and "MegaDetector" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt", "md.json"]  # nothing written
    assert main([*args, "--output", str(tmp_path / "out.csv")]) == 0  # a table needs no box
    assert [row["detection"] for row in read_csv(tmp_path / "out.csv")] == ["images[0].detections[0]"]


@pytest.mark.shared_data
def test_mask_on_megadetector_writes_a_valid_file(shared_data, tmp_path):
    (tmp_path / "list.txt").write_text("canidae\ncervidae\n")
    args = [
        "mask",
        "--predictions",
        str(shared_data / "megadetector" / "format_example.json"),
        "--format",
        "megadetector",
        "--lineage-ranks",
        MD_RANKS,
        "--taxa-list",
        str(tmp_path / "list.txt"),
        "--output",
        str(tmp_path / "out.json"),
    ]
    assert main(args) == 0
    validate_megadetector(tmp_path / "out.json")
    det = json.loads((tmp_path / "out.json").read_text())["images"][0]["detections"][0]
    assert det["classifications"] == [
        ["1", pytest.approx(0.071 / 0.096, abs=1e-6)],
        ["4", pytest.approx(0.025 / 0.096, abs=1e-6)],
    ]


@pytest.mark.shared_data
def test_rollup_on_speciesnet_records_the_rollup_in_prediction_source(shared_data, tmp_path):
    args = [
        "rollup",
        "--predictions",
        str(shared_data / "speciesnet" / "predict_geofence_disabled.json"),
        "--threshold",
        "species=0.999",
        "--threshold",
        "family=0.99",
        "--output",
        str(tmp_path / "out.json"),
    ]
    assert main(args) == 0
    (entry,) = json.loads((tmp_path / "out.json").read_text())["predictions"]
    assert entry["prediction"] == ";mammalia;proboscidea;elephantidae;;;elephantidae"
    assert entry["prediction_source"] == "classifier+rollup_to_family"


@pytest.mark.shared_data
def test_rollup_on_an_antenna_response_with_a_taxonomy_file(shared_data, tmp_path, capsys):
    (tmp_path / "response.json").write_text(json.dumps(antenna_response(shared_data)))
    args = [
        "rollup",
        "--predictions",
        str(tmp_path / "response.json"),
        "--taxonomy",
        str(shared_data / "ami" / "taxonomy_map.csv"),
        "--id-column",
        "speciesKey",
        "--output",
        str(tmp_path / "out.json"),
    ]
    assert main(args) == 0
    assert "60 rows: 8 confident, 47 rolled up, 5 no rank cleared" in capsys.readouterr().err
    doc = json.loads((tmp_path / "out.json").read_text())
    assert sum(d["classifications"][-1]["algorithm"]["key"] == "taxopost-rank-rollup" for d in doc["detections"]) == 47
    assert main(["rollup", "--predictions", str(tmp_path / "response.json"), "--output", str(tmp_path / "x.csv")]) == 2
    assert "this antenna file carries no taxonomy: give one" in one_line_error(capsys)


@pytest.mark.shared_data
def test_evaluate_on_a_speciesnet_file(shared_data, tmp_path):
    (tmp_path / "truth.csv").write_text("label\nloxodonta africana\nleopardus pardalis\n")
    (tmp_path / "pipelines.json").write_text(json.dumps([{"name": "r", "steps": [{"task": "rank_rollup"}]}]))
    args = [
        "evaluate",
        "--predictions",
        str(shared_data / "speciesnet" / "predict_full_ensemble.json"),
        "--ground-truth",
        str(tmp_path / "truth.csv"),
        "--pipelines",
        str(tmp_path / "pipelines.json"),
        "--output-dir",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["pipelines"][0]["accuracy"] == 1.0


def test_bad_predictions_file_names_file_path_and_value_and_writes_nothing(tmp_path, capsys):
    doc = {
        "info": {"format_version": "1.5"},
        "detection_categories": {"1": "animal"},
        "classification_categories": {"0": "fox", "1": "wolf"},
        "images": [
            {
                "file": "a.jpg",
                "detections": [
                    {"category": "1", "conf": 0.9, "bbox": [0, 0, 1, 1], "classifications": [["0", 0.7], ["1", 0.6]]}
                ],
            }
        ],
    }
    (tmp_path / "in.json").write_text(json.dumps(doc))
    (tmp_path / "taxonomy.csv").write_text("genus,species\nVulpes,fox\nCanis,wolf\n")
    args = [
        "rollup",
        "--predictions",
        str(tmp_path / "in.json"),
        "--taxonomy",
        str(tmp_path / "taxonomy.csv"),
        "--threshold",
        "species=0.8",
        "--threshold",
        "genus=0.6",
        "--output",
        str(tmp_path / "out.json"),
    ]
    assert main(args) == 2
    error = one_line_error(capsys)
    assert error.startswith(f"taxopost: error: {tmp_path / 'in.json'}: images[0].detections[0]: scores[0]='sum=1.3'"), (
        error
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json", "taxonomy.csv"]  # nothing half-written


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("sample", "old", "where"),
    [
        ("megadetector/format_example.json", "0.901", "images[0].detections[0].classifications[0][1]='1e400'"),
        ("megadetector/format_example.json", "0.2,", "info.detector_metadata.typical_detection_threshold='1e400'"),
        (
            "speciesnet/predict_full_ensemble.json",
            "0.9922405481338501",
            "predictions[0].classifications.scores[0]='1e400'",
        ),
    ],
    ids=["megadetector pair", "megadetector header", "speciesnet score"],
)
def test_a_number_too_large_for_a_float_is_named_by_its_json_path_and_text(
    shared_data, tmp_path, capsys, sample, old, where
):
    text = (shared_data / sample).read_text()
    assert old in text
    (tmp_path / "in.json").write_text(text.replace(old, "1e400" + old[-1] * old.endswith(","), 1))
    ranks = ["--lineage-ranks", MD_RANKS] if sample.startswith("megadetector") else []
    args = ["rollup", "--predictions", str(tmp_path / "in.json"), *ranks, "--output", str(tmp_path / "out.csv")]
    assert main(args) == 2
    error = one_line_error(capsys)
    assert f"in.json: {where}: a number too large for a 64-bit float" in error, error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]


def test_options_of_the_other_input_kind_are_refused(vanessa, capsys):
    np.save(vanessa / "scores.npy", np.array([[0.9, 0.1, 0, 0]], np.float32))
    assert (
        main(
            files_args(vanessa, "rollup", "scores.npy", "--format", "megadetector", "--output", str(vanessa / "o.csv"))
        )
        == 2
    )
    assert "--format='megadetector': only with --predictions" in one_line_error(capsys)
    assert (
        main(
            files_args(
                vanessa, "rollup", "scores.npy", "--output", str(vanessa / "o.json"), "--threshold", "species=0.5"
            )
        )
        == 2
    )
    assert "a .json output writes the format of a --predictions file" in one_line_error(capsys)


@pytest.mark.shared_data
def test_mask_then_rollup_through_antenna_files_keeps_one_terminal_and_rolls_up_the_masked_vector(
    shared_data, tmp_path, capsys
):
    """Masking writes a full distribution, which the roll-up reads; each detection keeps one current answer."""
    from taxopost.io.predictions.antenna import read_antenna

    response = antenna_response(shared_data)
    (tmp_path / "response.json").write_text(json.dumps(response))
    labels = response["algorithms"][next(iter(response["algorithms"]))]["category_map"]["labels"]
    (tmp_path / "list.txt").write_text("\n".join(labels[:10]) + "\n")
    taxonomy = ["--taxonomy", str(shared_data / "ami" / "taxonomy_map.csv"), "--id-column", "speciesKey"]
    masked, rolled = tmp_path / "masked.json", tmp_path / "rolled.json"
    assert main(["mask", "--predictions", str(tmp_path / "response.json"), *taxonomy,
                 "--taxa-list", str(tmp_path / "list.txt"), "--output", str(masked)]) == 0  # fmt: skip
    assert main(["rollup", "--predictions", str(masked), *taxonomy, "--output", str(rolled)]) == 0
    document = json.loads(rolled.read_text())
    for detection in document["detections"]:
        assert sum(c.get("terminal", True) for c in detection["classifications"]) == 1
    masked_rows = read_antenna(masked)
    assert masked_rows.extra["algorithm"] == read_antenna(tmp_path / "response.json").extra["algorithm"]
    kept = masked_rows.scores.dense(0, masked_rows.scores.shape[0])
    assert np.allclose(kept[:, 10:], 0)  # the roll-up's input is the masked distribution, not the model's
    again = read_antenna(rolled)  # passed over the roll-up: the masked distribution beneath it
    assert np.allclose(again.scores.dense(0, again.scores.shape[0]), kept)


@pytest.mark.shared_data
def test_rolling_up_its_own_megadetector_output_again_starts_from_the_models_pairs(shared_data, tmp_path, capsys):
    """A second roll-up reads the first one's input: the bear is confident at species (0.901 >= 0.5),
    so the first roll-up to ursidae is undone, not read as the lone pair [ursidae, 0.901]."""
    example = shared_data / "megadetector" / "format_example.json"
    first, again = tmp_path / "ursidae.json", tmp_path / "again.json"
    common = ["rollup", "--lineage-ranks", MD_RANKS, "--threshold", "species=0.95"]
    assert main([*common, "--threshold", "family=0.9", "--predictions", str(example), "--output", str(first)]) == 0
    capsys.readouterr()
    assert main(["rollup", "--lineage-ranks", MD_RANKS, "--threshold", "species=0.5",
                 "--predictions", str(first), "--output", str(again)]) == 0  # fmt: skip
    assert "1 rows: 1 confident, 0 rolled up, 0 no rank cleared" in capsys.readouterr().err
    validate_megadetector(again)
    assert json.loads(again.read_text())["images"] == json.loads(example.read_text())["images"]


@pytest.mark.shared_data
def test_masking_its_own_megadetector_output_again_masks_the_models_pairs_and_a_rollup_chains(shared_data, tmp_path):
    example = shared_data / "megadetector" / "format_example.json"
    (tmp_path / "first.txt").write_text("canidae\ncervidae\n")
    (tmp_path / "second.txt").write_text("ursidae\nalcesalces\n")
    first, second, rolled = tmp_path / "first.json", tmp_path / "second.json", tmp_path / "rolled.json"

    def mask(source: Path, listed: str, out: Path) -> None:
        assert main(["mask", "--predictions", str(source), "--lineage-ranks", MD_RANKS,
                     "--taxa-list", str(tmp_path / listed), "--output", str(out)]) == 0  # fmt: skip
        validate_megadetector(out)

    mask(example, "first.txt", first)
    mask(first, "second.txt", second)
    det = json.loads(second.read_text())["images"][0]["detections"][0]
    assert det["classifications"] == [
        ["3", pytest.approx(0.901 / 0.926, abs=1e-6)],
        ["4", pytest.approx(0.025 / 0.926, abs=1e-6)],
    ]  # the bear, masked out by the first list, is back: the second list applied to the model's pairs
    assert det["postprocessing"] == [{"task": "class_masking"}]
    assert main(["rollup", "--predictions", str(first), "--lineage-ranks", MD_RANKS, "--threshold", "species=0.95",
                 "--threshold", "family=0.9", "--output", str(rolled)]) == 0  # fmt: skip
    validate_megadetector(rolled)
    doc = json.loads(rolled.read_text())
    ((key, score),) = doc["images"][0]["detections"][0]["classifications"]
    assert doc["classification_categories"][key] == "cervidae" and score == pytest.approx(1.0, abs=1e-5)


# -- bad input the readers crashed on, and what MegaDetector's validator refuses --------------------

HUGE = "1" + "0" * 400  # a JSON integer: a float cannot hold it (1e400 is the float form)
HUGE_SHORT = "'" + HUGE[:57] + "...'"  # as a message quotes it: short() cuts its repr to 60 characters


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("sample", "old", "new", "where"),
    [
        ("megadetector/format_example.json", "0.901", HUGE, "images[0].detections[0].classifications[0][1]"),
        ("megadetector/format_example.json", "0.2762", HUGE, "images[0].detections[0].bbox[1]"),
        ("megadetector/format_example.json", "0.901", "-" + HUGE, "images[0].detections[0].classifications[0][1]"),
        ("speciesnet/classify_only.json", "0.3486539423465729", HUGE, "predictions[0].classifications.scores[0]"),
        # msgspec refuses an integer of more than 4300 digits itself: named the same way, not by its elided path
        (
            "megadetector/format_example.json",
            "0.901",
            "1" + "0" * 5000,
            "images[0].detections[0].classifications[0][1]",
        ),
    ],
    ids=["megadetector pair", "megadetector bbox", "negative pair", "speciesnet score", "5001 digits"],
)
def test_a_huge_integer_is_named_by_its_json_path_and_a_short_form_and_writes_nothing(
    shared_data, tmp_path, capsys, sample, old, new, where
):
    text = (shared_data / sample).read_text()
    assert old in text
    (tmp_path / "in.json").write_text(text.replace(old, new, 1))
    ranks = ["--lineage-ranks", MD_RANKS] if sample.startswith("megadetector") else []
    args = ["rollup", "--predictions", str(tmp_path / "in.json"), *ranks, "--threshold", "species=0.95"]
    assert main([*args, "--output", str(tmp_path / "out.json")]) == 2
    error = one_line_error(capsys)
    quoted = "'-" + HUGE[:56] + "...'" if new.startswith("-") else HUGE_SHORT
    assert f"in.json: {where}={quoted}: a number too large for a 64-bit float" in error, error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            lambda d: d["detections"][1]["classifications"][1]["scores"].__setitem__(2, int(HUGE)),
            "detections[1].classifications[1].scores[2]",
        ),
        (lambda d: d["detections"][0]["bbox"].update(y2=int(HUGE)), "detections[0].bbox.y2"),
    ],
    ids=["score", "bbox corner"],
)
def test_a_huge_integer_in_an_antenna_response_is_named_by_its_json_path(shared_data, tmp_path, capsys, change, where):
    doc = _antenna_with_category_map(shared_data)
    change(doc["body"])
    (tmp_path / "in.json").write_text(json.dumps(doc))
    assert main(_antenna_rollup(tmp_path, "in.json")) == 2
    error = one_line_error(capsys)
    assert f"in.json: {where}={HUGE_SHORT}: a number too large for a 64-bit float" in error, error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json", "taxonomy.csv"]


ANTENNA_LABELS = ("Vanessa atalanta", "Vanessa cardui", "Danaus plexippus")


def _antenna_with_category_map(shared_data: Path) -> dict:
    """The recorded processing-service response, its 3-class species classifier given a category map
    (the service's response declares no algorithm)."""
    path = shared_data / "antenna" / "processing_service" / "process_random-detection-random-species.json"
    doc = json.loads(path.read_text())
    data = [{"index": i, "label": label, "gbif_key": None} for i, label in enumerate(ANTENNA_LABELS)]
    doc["body"]["algorithms"] = {"random-species-classifier": {"category_map": {"data": data}}}
    return doc


def _antenna_rollup(folder: Path, name: str) -> list[str]:
    (folder / "taxonomy.csv").write_text(VANESSA)
    return ["rollup", "--predictions", str(folder / name), "--taxonomy", str(folder / "taxonomy.csv"),
            "--output", str(folder / "out.json")]  # fmt: skip


def _category_map_data(body: dict) -> list:
    return body["algorithms"]["random-species-classifier"]["category_map"]["data"]


_MAP = "algorithms['random-species-classifier'].category_map"


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("change", "where", "reason"),
    [
        (lambda b: b["source_images"].append(5), "source_images[3]=5", "must be a JSON object"),
        (lambda b: b["source_images"][0].pop("id"), "source_images[0].id=None", "is missing"),
        (lambda b: b["source_images"][1].update(id=["101"]), "source_images[1].id=['101']", "must be a JSON str"),
        (
            lambda b: b.update(algorithms=["random-species-classifier"]),
            "algorithms=['random-species-classifier']",
            "must be a JSON object",
        ),
        (
            lambda b: b["algorithms"].update({"random-species-classifier": "x"}),
            "algorithms['random-species-classifier']='x'",
            "must be a JSON object",
        ),
        (
            lambda b: b["algorithms"]["random-species-classifier"].update(category_map=["a"]),
            f"{_MAP}=['a']",
            "must be a JSON object",
        ),
        (
            lambda b: b["algorithms"]["random-species-classifier"].update(category_map={"data": {"a": 1}}),
            f"{_MAP}.data={{'a': 1}}",
            "must be a list",
        ),
        (
            lambda b: b["algorithms"]["random-species-classifier"].update(category_map={"data": ["a", "b", "c"]}),
            f"{_MAP}.data[0]='a'",
            "must be a JSON object",
        ),
        (
            lambda b: _category_map_data(b).__setitem__(0, {"index": 0, "gbif_key": "1"}),
            f"{_MAP}.data[0].label=None",
            "is missing",
        ),
        (lambda b: _category_map_data(b)[2].update(label=7), f"{_MAP}.data[2].label=7", "must be a JSON str"),
        (lambda b: _category_map_data(b)[0].update(index="0"), f"{_MAP}.data[0].index='0'", "must be a JSON int"),
        (lambda b: _category_map_data(b)[1].pop("index"), f"{_MAP}.data[1].index=None", "is missing"),
        (
            lambda b: _category_map_data(b)[1].update(gbif_key={"key": 1}),
            f"{_MAP}.data[1].gbif_key={{'key': 1}}",
            "a GBIF key is a number or its text",
        ),
        (
            lambda b: b["algorithms"]["random-species-classifier"].update(category_map={"labels": 5}),
            f"{_MAP}.labels=5",
            "must be a list of labels",
        ),
        (
            lambda b: b["algorithms"]["random-species-classifier"].update(category_map={"labels": "abc"}),
            f"{_MAP}.labels='abc'",
            "must be a list of labels",
        ),
        (
            lambda b: b["algorithms"]["random-species-classifier"].update(category_map={"labels": ["a", 2, "c"]}),
            f"{_MAP}.labels[1]=2",
            "a label must be a string",
        ),
        (lambda b: b["detections"][0]["bbox"].pop("x2"), "detections[0].bbox.x2=None", "is missing"),
        (
            lambda b: b["detections"][2]["bbox"].update(y1="5"),
            "detections[2].bbox.y1='5'",
            "must be a JSON int or float",
        ),
        (
            lambda b: b["detections"][1]["classifications"][1]["algorithm"].update(key=["k"]),
            "detections[1].classifications[1].algorithm.key=['k']",
            "must be a JSON string",
        ),
        (lambda b: b["detections"][0]["classifications"][0]["algorithm"].update(key=["k"]), None, None),  # not read
        # what the importer refuses, the file commands refuse too (they took the last image of an id, or wrote it back)
        (
            lambda b: b["source_images"].append({"id": "100", "url": "http://127.0.0.1:8767/other.jpg"}),
            "source_images[3].id='100'",
            "repeats source_images[0]: a detection's source_image_id must name one image",
        ),
        (
            lambda b: b["detections"][0]["bbox"].update(x1=500.0),
            "detections[0].bbox={'x1': 500.0, 'y1': 176.0, 'x2': 409.0, 'y2': 328.0}",
            "needs x1 <= x2 and y1 <= y2",
        ),
        (
            lambda b: b["source_images"][0].update(width=400, height=400),
            "detections[0].bbox={'x1': 207.0, 'y1': 176.0, 'x2': 409.0, 'y2': 328.0}",
            "lies outside its image",
        ),
        (
            lambda b: b["source_images"][1].update(width=640.5),
            "source_images[1].width=640.5",
            "must be a positive whole number of pixels",
        ),
        (
            lambda b: b["source_images"][2].update(height=-480),
            "source_images[2].height=-480",
            "must be a positive whole number of pixels",
        ),
        (
            lambda b: b["source_images"][0].update(timestamp="yesterday"),
            "source_images[0].timestamp='yesterday'",
            "expected an ISO 8601 date and time",
        ),
        (
            lambda b: [
                image.update(width=640, height=480, timestamp="2024-07-01 21:05") for image in b["source_images"]
            ],
            None,
            None,
        ),  # sizes that hold the boxes, and a time
        (
            lambda b: _category_map_data(b)[1].update(label=ANTENNA_LABELS[0]),
            f"{_MAP}.data[1].label='{ANTENNA_LABELS[0]}'",
            f"repeats {_MAP}.data[0].label: each class has its own label",
        ),
        # the chosen classification's logits (kept by the importer) and time
        (
            lambda b: b["detections"][1]["classifications"][1].update(logits=[0.1, 0.2]),
            "detections[1].classifications[1].logits='2 values'",
            "the category map has 3 labels",
        ),
        (
            lambda b: b["detections"][0]["classifications"][1]["logits"].__setitem__(2, "0.3"),
            "detections[0].classifications[1].logits[2]='0.3'",
            "a logit must be a number",
        ),
        (
            lambda b: b["detections"][0]["classifications"][1]["logits"].__setitem__(0, 1e39),
            "detections[0].classifications[1].logits[0]=1e+39",
            "a logit must be finite",
        ),
        (
            lambda b: b["detections"][2]["classifications"][1].update(timestamp="07:53 today"),
            "detections[2].classifications[1].timestamp='07:53 today'",
            "expected an ISO 8601 date and time",
        ),
        (lambda b: [c.update(logits=[]) for d in b["detections"] for c in d["classifications"]], None, None),
    ],
)
def test_a_badly_shaped_antenna_response_names_its_json_path_and_value(
    shared_data, tmp_path, capsys, change, where, reason
):
    doc = _antenna_with_category_map(shared_data)
    change(doc["body"])
    (tmp_path / "in.json").write_text(json.dumps(doc))
    if where is None:
        assert main(_antenna_rollup(tmp_path, "in.json")) == 0
        return
    assert main(_antenna_rollup(tmp_path, "in.json")) == 2
    error = one_line_error(capsys)
    assert f"in.json: {where}: {reason}" in error, error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json", "taxonomy.csv"]


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("labels", "where", "reason"),
    [
        (5, "detections[0].classifications[1].labels=5", "must be a list of labels"),
        ("abc", "detections[0].classifications[1].labels='abc'", "must be a list of labels"),
        ([1, 2, 3], "detections[0].classifications[1].labels[0]=1", "a label must be a string"),
    ],
)
def test_antenna_classification_labels_that_are_not_a_list_of_strings_are_named(
    shared_data, tmp_path, capsys, labels, where, reason
):
    doc = _antenna_with_category_map(shared_data)
    doc["body"]["algorithms"] = {}  # the labels come from the classifications
    for det in doc["body"]["detections"]:
        det["classifications"][1]["labels"] = list(ANTENNA_LABELS)
    doc["body"]["detections"][0]["classifications"][1]["labels"] = labels
    (tmp_path / "in.json").write_text(json.dumps(doc))
    assert main(_antenna_rollup(tmp_path, "in.json")) == 2
    error = one_line_error(capsys)
    assert f"in.json: {where}: {reason}" in error, error
    doc["body"]["detections"][0]["classifications"][1]["labels"] = list(ANTENNA_LABELS)  # the file as it was
    doc["body"]["detections"][2]["classifications"][1]["labels"] = [*ANTENNA_LABELS[:2], "Danaus gilippus"]
    (tmp_path / "in.json").write_text(json.dumps(doc))
    assert main(_antenna_rollup(tmp_path, "in.json")) == 2
    error = one_line_error(capsys)
    assert "in.json: detections[2].classifications[1].labels=" in error, error
    assert "differ between detections of 'random-species-classifier' (first: detections[0]" in error, error
    doc["body"]["detections"][2]["classifications"][1]["labels"] = list(ANTENNA_LABELS)
    (tmp_path / "in.json").write_text(json.dumps(doc))
    assert main(_antenna_rollup(tmp_path, "in.json")) == 0


@pytest.mark.shared_data
@pytest.mark.parametrize("key", ["²", "٣", "-1", " 1", "1.0", ""])
def test_a_megadetector_classification_id_that_is_not_ascii_digits_is_named(shared_data, tmp_path, capsys, key):
    doc = json.loads((shared_data / "megadetector" / "format_example.json").read_text())
    doc["classification_categories"][key] = "x"
    (tmp_path / "in.json").write_text(json.dumps(doc))
    args = ["rollup", "--predictions", str(tmp_path / "in.json"), "--lineage-ranks", MD_RANKS,
            "--threshold", "species=0.95", "--output", str(tmp_path / "out.json")]  # fmt: skip
    assert main(args) == 2
    error = one_line_error(capsys)
    assert f"in.json: classification_categories[{key!r}]={key!r}: an id must be a non-negative integer" in error, error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]


def _video(doc: dict) -> dict:
    return doc["images"][1]  # path/from/base/dir/video_with_person.mp4: frame_rate, frames_processed, frame_number


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("edit", "where", "value"),
    [
        (lambda d: d["info"].update(format_version="1.x"), "info.format_version", "'1.x'"),
        (lambda d: d["info"].update(format_version=""), "info.format_version", "''"),
        (lambda d: d["info"].update(format_version="1.2"), "info.format_version", "'1.2'"),
        (lambda d: d["detection_categories"].update({"3": 3}), "detection_categories['3']", "3"),
        (lambda d: d["detection_categories"].update({"3": None}), "detection_categories['3']", "None"),
        (lambda d: d["detection_categories"].update({"3": " "}), "detection_categories['3']", "' '"),  # format 1.6
        (lambda d: _video(d).pop("frame_rate"), "images[1].frame_rate", "None"),
        (lambda d: _video(d).update(frame_rate="20"), "images[1].frame_rate", "'20'"),
        (lambda d: _video(d).update(frame_rate=-1), "images[1].frame_rate", "-1"),
        (lambda d: _video(d).pop("frames_processed"), "images[1].frames_processed", "None"),
        (lambda d: _video(d)["detections"][1].pop("frame_number"), "images[1].detections[1].frame_number", "None"),
        (lambda d: d["images"][0].update(file="clip.MOV"), "images[0].frames_processed", "None"),
        (
            lambda d: d["images"][4].update(file="broken.avi"),
            "images[4].frames_processed",
            "None",
        ),  # a failed video too
        (
            lambda d: (d["info"].update(format_version="1.4"), _video(d).pop("frame_rate")),
            "images[1].frame_rate",
            "None",
        ),
    ],
    ids=[
        "version not a number",
        "empty version",
        "version before 1.3",
        "detection name a number",
        "detection name null",
        "blank detection name at 1.6",
        "video without frame_rate",
        "frame_rate a string",
        "negative frame_rate without failure",
        "video without frames_processed",
        "frame without frame_number",
        "an image file that is a video",
        "a failed video",
        "video without frame_rate at 1.4",
    ],
)
def test_a_megadetector_header_or_video_its_validator_refuses_is_not_written_back_but_still_read(
    shared_data, tmp_path, capsys, edit, where, value
):
    doc = json.loads((shared_data / "megadetector" / "format_example.json").read_text())
    edit(doc)
    path = tmp_path / "md.json"
    path.write_text(json.dumps(doc))
    args = ["rollup", "--predictions", str(path), "--lineage-ranks", MD_RANKS, "--threshold", "species=0.95"]
    assert main([*args, "--output", str(tmp_path / "out.json")]) == 2
    error = one_line_error(capsys)
    assert f"md.json: {where}={value}: " in error and "MegaDetector's validator refuses it" in error, error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["md.json"]  # nothing written
    assert main([*args, "--output", str(tmp_path / "out.csv")]) == 0  # a table copies none of it
    assert [row["detection"] for row in read_csv(tmp_path / "out.csv")] == ["images[0].detections[0]"]
    with pytest.raises(AssertionError):  # the rule is the validator's: it refuses the file as read
        validate_megadetector(path)


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["info"].update(format_version="1.3"),
        lambda d: d["info"].update(format_version=" 1.5 "),  # float() takes it
        lambda d: d.update(
            detection_categories={**d["detection_categories"], "3": " "}, info={"format_version": "1.5"}
        ),
        lambda d: _video(d).update(frame_rate=-1, failure=None),  # a failure key: the validator allows it
        lambda d: (
            d["info"].update(format_version="1.3"),
            _video(d).pop("frame_rate"),
            _video(d).pop("frames_processed"),
        ),
        lambda d: (d["info"].update(format_version="1.4"), _video(d).pop("frames_processed")),
        lambda d: d["images"][0].update(file="clip.mp4.jpg"),
    ],
    ids=[
        "version 1.3",
        "version with spaces",
        "blank detection name at 1.5",
        "negative frame_rate with failure",
        "video fields before 1.4",
        "frames_processed before 1.5",
        "not a video",
    ],
)
def test_what_megadetector_s_validator_takes_is_written_back(shared_data, tmp_path, edit):
    doc = json.loads((shared_data / "megadetector" / "format_example.json").read_text())
    edit(doc)
    path = tmp_path / "md.json"
    path.write_text(json.dumps(doc))
    args = ["rollup", "--predictions", str(path), "--lineage-ranks", MD_RANKS, "--threshold", "species=0.95"]
    assert main([*args, "--output", str(tmp_path / "out.json")]) == 0
    validate_megadetector(tmp_path / "out.json")


def test_a_megadetector_file_whose_classes_have_no_taxon_is_named(tmp_path, capsys):
    doc = {
        "info": {"format_version": "1.5"},
        "detection_categories": {"1": "animal"},
        "classification_categories": {"0": "blank", "1": "vehicle"},
        "classification_category_descriptions": {
            "0": "f1856211-cfb7-4a5b-9158-c0f72fd09ee6;;;;;;blank",
            "1": ";;;;;;vehicle",
        },
        "images": [
            {
                "file": "a.jpg",
                "detections": [{"category": "1", "conf": 0.9, "bbox": [0, 0, 1, 1], "classifications": [["0", 0.9]]}],
            }
        ],
    }
    (tmp_path / "blank.json").write_text(json.dumps(doc))
    args = ["rollup", "--predictions", str(tmp_path / "blank.json"), "--threshold", "species=0.9"]
    assert main([*args, "--output", str(tmp_path / "out.json")]) == 2
    error = one_line_error(capsys)
    assert f"{tmp_path / 'blank.json'}: " in error and "no class has a taxon" in error, error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blank.json"]


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_logits_a_float_apart_roll_up_without_a_numpy_warning(vanessa, capsys):
    """[1e308, -1e308]: the shift by the row maximum overflows to -inf, whose exp is the right 0."""
    np.save(vanessa / "logits.npy", np.array([[1e308, -1e308, -1e308, 0.0]]))
    args = ["rollup", "--taxonomy", str(vanessa / "taxonomy.csv"), "--category-map", str(vanessa / "labels.json"),
            "--logits", str(vanessa / "logits.npy"), "--output", str(vanessa / "out.csv")]  # fmt: skip
    assert main(args) == 0
    assert "RuntimeWarning" not in capsys.readouterr().err
    (row,) = read_csv(vanessa / "out.csv")
    assert (row["taxon"], row["status"], float(row["score"])) == ("Vanessa atalanta", "confident", 1.0)
