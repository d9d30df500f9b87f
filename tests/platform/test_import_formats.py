"""`taxopost import predictions` of MegaDetector, SpeciesNet and Antenna files: the one importer, with
detector-only detections, the file's own taxonomy registered, idempotent, nothing half-written."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import numpy as np
import pytest

from taxopost.cli import main
from taxopost.core.taxonomy import Taxonomy, TaxonRecord
from taxopost.errors import InputError
from taxopost.io import read_taxonomy
from taxopost.ml.models import Algorithm
from taxopost.ml.operations import get_or_create_algorithm, import_category_map
from taxopost.observations.models import Classification, Detection, SourceImage
from taxopost.observations.predictions import import_predictions
from taxopost.observations.vectors import stack
from taxopost.taxa.models import Taxon
from taxopost.taxa.operations import import_taxonomy
from tests.io.samples import antenna_response

pytestmark = [pytest.mark.django_db, pytest.mark.shared_data]
MD_RANKS = ("kingdom", "phylum", "class", "order", "family", "species")


def counts() -> tuple[int, int, int]:
    return SourceImage.objects.count(), Detection.objects.count(), Classification.objects.count()


def test_megadetector_file_imports_detector_only_detections_and_its_taxonomy(shared_data):
    path = shared_data / "megadetector" / "format_example.json"
    summary = import_predictions(path, capture_set="md", lineage_ranks=MD_RANKS)
    # 4 detections on 2 files (an image and a video's frames); one classified; empty and failed images have none
    assert counts() == (2, 4, 1)
    assert summary.records == 4
    clf = Classification.objects.get()
    assert (clf.taxon.name, clf.algorithm.key) == ("ursusamericanus", "kaggle:google/speciesnet/pyTorch/v4.0.2a/1")
    assert clf.score == pytest.approx(0.901)
    vector = stack([clf.scores], clf.category_map.n_classes)[0]
    assert vector.sum() == pytest.approx(0.997)  # the top 3, densified: a partial row
    assert Taxon.objects.get(name="ursusamericanus").parent.name == "ursidae"
    keys = sorted(Detection.objects.values_list("key", flat=True))
    assert keys == [
        "0,0.2762,0.1539,0.2825",
        "0.0451,0.1849,0.3642,0.4636",
        "0.1,0.2,0.3,0.4@0",
        "0.11,0.21,0.31,0.41@20",
    ]
    assert Detection.objects.filter(classifications__isnull=True).count() == 3
    # the detector's conf of each box is kept: occurrence consensus can weigh by it
    assert sorted(Detection.objects.values_list("confidence", flat=True)) == [0.061, 0.774, 0.871, 0.926]
    import_predictions(path, capture_set="md", lineage_ranks=MD_RANKS)
    assert counts() == (2, 4, 1)  # idempotent


def test_speciesnet_file_imports_each_image_classification_and_its_boxes(shared_data):
    summary = import_predictions(shared_data / "speciesnet" / "predict_full_ensemble.json", capture_set="sn")
    images, detections, classifications = counts()
    assert (images, classifications) == (2, 2)
    document = json.loads((shared_data / "speciesnet" / "predict_full_ensemble.json").read_text())
    boxes = sum(len(p["detections"]) for p in document["predictions"])
    assert detections == 2 + boxes and summary.records == 2 + boxes
    confs = sorted(d["conf"] for p in document["predictions"] for d in p["detections"])
    assert sorted(Detection.objects.exclude(confidence=None).values_list("confidence", flat=True)) == confs
    elephant = Classification.objects.get(detection__source_image__path="test_data/african_elephants.jpg")
    assert elephant.taxon.name == "loxodonta africana" and elephant.algorithm.key.startswith("speciesnet-4.0.0a-")


def test_detect_only_speciesnet_file_imports_detections_without_classifications(shared_data):
    import_predictions(shared_data / "speciesnet" / "detect_only.json", format="speciesnet", capture_set="sn")
    assert counts() == (2, 16, 0)


def test_antenna_response_imports_with_its_algorithm_registered(shared_data, tmp_path, capsys):
    taxonomy = read_taxonomy(shared_data / "ami" / "taxonomy_map.csv", id_column="speciesKey")
    response = antenna_response(shared_data, 10)
    labels = [
        str(item["gbif_key"]) for item in response["algorithms"]["rec-ne-america-species-40"]["category_map"]["data"]
    ]
    import_taxonomy(Taxonomy(_records(taxonomy, labels)))
    category_map, _ = import_category_map(labels)
    get_or_create_algorithm("rec-ne-america-species-40", category_map=category_map)
    (tmp_path / "response.json").write_text(json.dumps(response))
    import_predictions(tmp_path / "response.json", capture_set="antenna")
    assert counts()[1:] == (10, 10)
    detection = Detection.objects.order_by("pk").first()
    assert detection.bbox == [float(v) for v in response["detections"][0]["bbox"].values()]
    assert detection.source_image.width == 4096
    # Each classification keeps the response's logits beside its scores, and its time.
    for clf, sent in zip(Classification.objects.order_by("detection_id"), response["detections"], strict=False):
        (made,) = sent["classifications"]
        np.testing.assert_array_equal(np.frombuffer(clf.logits, "<f4"), np.asarray(made["logits"], np.float32))
        assert clf.created_at == datetime.fromisoformat(made["timestamp"]).replace(tzinfo=UTC)
    # Exported back, each image and detection names the response's own image ids (Antenna's captures).
    assert main(["export", "antenna", "--capture-set", "antenna", "--output", str(tmp_path / "back.json")]) == 0
    back = json.loads((tmp_path / "back.json").read_text())
    ids = {image["url"]: image["id"] for image in response["source_images"]}
    assert {image["url"]: image["id"] for image in back["source_images"]} == ids
    sent = sorted((d["source_image_id"], tuple(d["bbox"].values())) for d in response["detections"][:10])
    assert sorted((d["source_image_id"], tuple(d["bbox"].values())) for d in back["detections"]) == sent
    # An image of another source in the capture set (no id of its own): taxopost's ids, for all, said so.
    import_predictions(shared_data / "speciesnet" / "classify_only.json", capture_set="antenna")
    assert main(["export", "antenna", "--capture-set", "antenna", "--output", str(tmp_path / "mixed.json")]) == 0
    assert "images under taxopost's ids (not each has its own id from its source)" in capsys.readouterr().err
    # So, spelt as no capture's id: Antenna refuses them rather than attach results to other captures.
    mixed = json.loads((tmp_path / "mixed.json").read_text())
    pks = SourceImage.objects.values_list("pk", flat=True)
    assert sorted(image["id"] for image in mixed["source_images"]) == sorted(f"taxopost:{pk}" for pk in pks)
    # Imported elsewhere, such ids are not taken for a source's: exported there, they say so again.
    mixed["algorithms"] = response["algorithms"]
    (tmp_path / "mixed.json").write_text(json.dumps(mixed))
    import_predictions(tmp_path / "mixed.json", capture_set="copy", project="another station")
    copied = SourceImage.objects.filter(project__name="another station")
    assert copied.count() == 9 and set(copied.values_list("external_id", flat=True)) == {""}


def test_a_bad_file_leaves_the_database_unchanged(shared_data, tmp_path):
    document = json.loads((shared_data / "speciesnet" / "predict_full_ensemble.json").read_text())
    document["predictions"][1]["classifications"]["scores"][0] = 7.0
    (tmp_path / "bad.json").write_text(json.dumps(document))
    with pytest.raises(InputError, match=r"predictions\[1\].classifications.scores\[0\]=7.0"):
        import_predictions(tmp_path / "bad.json", capture_set="sn")
    assert counts() == (0, 0, 0) and not Algorithm.objects.exists() and not Taxon.objects.exists()


def test_the_command_needs_a_capture_set_and_says_so(shared_data, capsys):
    path = str(shared_data / "speciesnet" / "classify_only.json")
    assert main(["import", "predictions", path]) == 2
    assert "a speciesnet file names no capture set: give one" in capsys.readouterr().err
    assert main(["import", "predictions", path, "--capture-set", "sn"]) == 0
    assert counts() == (2, 2, 2)


def _records(taxonomy: Taxonomy, labels: list[str]) -> list[TaxonRecord]:
    """The taxa on the lineages of ``labels`` (the 40 classes), not all 58,000 species."""
    keep = {t for label in labels for t in taxonomy.lineage(taxonomy.find(label))}
    ids: dict[int, list[str]] = {}
    for key, taxon in taxonomy.external_ids.items():
        if taxon in keep:
            ids.setdefault(taxon, []).append(key)
    names = taxonomy.names
    return [
        TaxonRecord(
            names[t],
            taxonomy.rank_of(t),
            names[p] if (p := int(taxonomy.parents[t])) >= 0 else None,
            tuple(ids.get(t, ())),
        )
        for t in sorted(keep, key=lambda t: taxonomy.depth[t])
    ]


def test_a_json_file_is_told_apart_by_its_content_whatever_its_key_order(shared_data, tmp_path):
    document = json.loads((shared_data / "megadetector" / "format_example.json").read_text())
    images_first = {"images": document.pop("images"), **document}  # as MegaDetector itself writes them
    (tmp_path / "md.json").write_text(json.dumps(images_first))
    import_predictions(tmp_path / "md.json", capture_set="md", lineage_ranks=MD_RANKS)
    assert counts() == (2, 4, 1)
    record = {"capture_set": "s", "image": {"path": "one.jpg"}}  # JSON Lines under a .json name: detector-only
    (tmp_path / "records.json").write_text(json.dumps(record) + "\n")
    import_predictions(tmp_path / "records.json")
    assert counts() == (3, 5, 1)


def test_megadetector_detections_sharing_a_box_each_keep_their_classification(tmp_path):
    descriptions = {
        "0": "11111111-1111-1111-1111-111111111111;mammalia;carnivora;canidae;vulpes;vulpes;red fox",
        "1": "22222222-2222-2222-2222-222222222222;mammalia;carnivora;canidae;vulpes;lagopus;arctic fox",
    }
    box = [0.1, 0.2, 0.3, 0.4]
    doc = {
        "info": {"format_version": "1.5", "classifier": "fox-classifier"},
        "detection_categories": {"1": "animal"},
        "classification_categories": {"0": "red fox", "1": "arctic fox"},
        "classification_category_descriptions": descriptions,
        "images": [
            {
                "file": "x.jpg",
                "detections": [
                    {"category": "1", "conf": 0.9, "classifications": [["0", 0.8]]},
                    {"category": "1", "conf": 0.8, "classifications": [["1", 0.7]]},
                    {"category": "1", "conf": 0.9, "bbox": box, "classifications": [["0", 0.6]]},
                    {"category": "1", "conf": 0.7, "bbox": box, "classifications": [["1", 0.5]]},
                ],
            },
            {"file": "y.jpg", "detections": [{"category": "1", "conf": 0.9, "bbox": box}]},
        ],
    }
    path = tmp_path / "md.json"
    path.write_text(json.dumps(doc))
    import_predictions(path, capture_set="md")
    assert counts() == (2, 5, 4)
    found = {
        (c.detection.source_image.path, c.detection.key): (c.taxon.name, pytest.approx(c.score))
        for c in Classification.objects.select_related("detection__source_image", "taxon")
    }
    assert found == {
        ("x.jpg", "whole image"): ("vulpes vulpes", 0.8),
        ("x.jpg", "whole image#1"): ("vulpes lagopus", 0.7),
        ("x.jpg", "0.1,0.2,0.3,0.4"): ("vulpes vulpes", 0.6),
        ("x.jpg", "0.1,0.2,0.3,0.4#3"): ("vulpes lagopus", 0.5),
    }
    assert Detection.objects.get(source_image__path="y.jpg").key == "0.1,0.2,0.3,0.4"  # unique in its image
    import_predictions(path, capture_set="md")
    assert counts() == (2, 5, 4)  # idempotent


def _fox_file(images: list[dict]) -> dict:
    return {
        "info": {"format_version": "1.5"},
        "detection_categories": {"1": "animal"},
        "classification_categories": {"0": "red fox", "1": "arctic fox"},
        "classification_category_descriptions": {
            "0": "11111111-1111-1111-1111-111111111111;mammalia;carnivora;canidae;vulpes;vulpes;red fox",
            "1": "22222222-2222-2222-2222-222222222222;mammalia;carnivora;canidae;vulpes;lagopus;arctic fox",
        },
        "images": images,
    }


def test_an_image_listed_twice_is_refused_naming_the_repeat(shared_data, tmp_path):
    """Before, the repeat's detections got the first's keys and were dropped as imported already."""
    box = [0.1, 0.2, 0.3, 0.4]
    doc = _fox_file(
        [
            {
                "file": "x.jpg",
                "detections": [{"category": "1", "conf": 0.9, "bbox": box, "classifications": [["0", 0.8]]}],
            },
            {"file": "y.jpg", "detections": []},
            {
                "file": "x.jpg",
                "detections": [{"category": "1", "conf": 0.8, "bbox": box, "classifications": [["1", 0.7]]}],
            },
        ]
    )
    (tmp_path / "md.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"md.json: images\[2\].file='x.jpg': repeats images\[0\]: the import keys"):
        import_predictions(tmp_path / "md.json", capture_set="md")
    sn = json.loads((shared_data / "speciesnet" / "classify_only.json").read_text())
    sn["predictions"][1]["filepath"] = sn["predictions"][0]["filepath"]
    (tmp_path / "sn.json").write_text(json.dumps(sn))
    repeat = r"sn.json: predictions\[1\].filepath='test_data/african_elephants.jpg': repeats predictions\[0\]"
    with pytest.raises(InputError, match=repeat):
        import_predictions(tmp_path / "sn.json", capture_set="sn")
    assert counts() == (0, 0, 0) and not Algorithm.objects.exists()


def _antenna_registered(shared_data, n_detections: int) -> dict:
    """The assembled response of ``n_detections``, its algorithm registered with the category map."""
    taxonomy = read_taxonomy(shared_data / "ami" / "taxonomy_map.csv", id_column="speciesKey")
    response = antenna_response(shared_data, n_detections)
    labels = [
        str(item["gbif_key"]) for item in response["algorithms"]["rec-ne-america-species-40"]["category_map"]["data"]
    ]
    import_taxonomy(Taxonomy(_records(taxonomy, labels)))
    category_map, _ = import_category_map(labels)
    get_or_create_algorithm("rec-ne-america-species-40", category_map=category_map)
    return response


def test_antenna_detections_sharing_a_box_each_keep_their_classification(shared_data, tmp_path):
    """Before, the second became the first (both keyed by the box alone) and its classification was lost."""
    response = _antenna_registered(shared_data, 10)
    path = tmp_path / "response.json"
    path.write_text(json.dumps(response))
    import_predictions(path, capture_set="antenna")
    keys = {d.key for d in Detection.objects.all()}
    boxes = [",".join(f"{v:g}" for v in det["bbox"].values()) for det in response["detections"]]
    assert keys == set(boxes)  # distinct boxes keep the keys they always had
    first = response["detections"][0]
    again = json.loads(json.dumps(first))
    again["classifications"][0]["scores"].reverse()  # another answer on the same box
    response["detections"].append(again)  # not next to the first: keys are per image, wherever its detections are
    path.write_text(json.dumps(response))
    import_predictions(path, capture_set="antenna")
    assert counts()[1:] == (11, 11)  # only the new detection added
    position = sum(det["source_image_id"] == first["source_image_id"] for det in response["detections"][:10])
    image = SourceImage.objects.get(detections__key=boxes[0])
    twin = Detection.objects.get(source_image=image, key=f"{boxes[0]}#{position}")
    original = Detection.objects.get(source_image=image, key=boxes[0])
    assert twin.classifications.get().taxon != original.classifications.get().taxon
    import_predictions(path, capture_set="antenna")
    assert counts()[1:] == (11, 11)  # idempotent


def test_the_importer_refuses_an_antenna_box_as_the_file_commands_do(shared_data, tmp_path):
    response = antenna_response(shared_data, 3)
    response["detections"][0]["bbox"].update(x1=5000.0)
    (tmp_path / "response.json").write_text(json.dumps(response))
    with pytest.raises(InputError, match=r"response.json: detections\[0\].bbox=\{'x1': 5000.0, .*: needs x1 <= x2"):
        import_predictions(tmp_path / "response.json", capture_set="antenna")
    assert counts() == (0, 0, 0)


def test_a_file_whose_classes_are_in_another_order_than_the_registered_map_is_refused(shared_data, tmp_path):
    """Stored by class index, every score would go to another species, silently."""
    taxonomy = read_taxonomy(shared_data / "ami" / "taxonomy_map.csv", id_column="speciesKey")
    response = antenna_response(shared_data, 10)
    data = response["algorithms"]["rec-ne-america-species-40"]["category_map"]["data"]
    labels = [str(item["gbif_key"]) for item in data]
    import_taxonomy(Taxonomy(_records(taxonomy, labels)))
    category_map, _ = import_category_map(labels[::-1])
    get_or_create_algorithm("rec-ne-america-species-40", category_map=category_map)
    (tmp_path / "response.json").write_text(json.dumps(response))
    with pytest.raises(InputError, match=rf"class 0='{data[0]['label']}': is '{labels[-1]}' in the category map of "
                       r"algorithm 'rec-ne-america-species-40': the file's classes are in another order"):  # fmt: skip
        import_predictions(tmp_path / "response.json", capture_set="antenna")
    assert counts() == (0, 0, 0)


def test_a_megadetector_file_without_descriptions_is_checked_against_the_registered_map(shared_data, tmp_path):
    """Its classes are named (here by the taxa the example's descriptions gave), not described."""
    path = shared_data / "megadetector" / "format_example.json"
    import_predictions(path, capture_set="described", lineage_ranks=MD_RANKS)  # its taxonomy, now known
    document = json.loads(path.read_text())
    descriptions = document.pop("classification_category_descriptions")
    keys = sorted(descriptions, key=int)
    names = [descriptions[key].split(";")[-1] for key in keys]
    document["classification_categories"] = dict(zip(keys, names, strict=True))
    (tmp_path / "md.json").write_text(json.dumps(document))
    for key, order in (("shuffled", [names[1], names[0], *names[2:]]), ("ordered", names)):
        get_or_create_algorithm(key, category_map=import_category_map(order)[0])
    before = counts()
    with pytest.raises(InputError, match=rf"classification_categories\['{keys[0]}'\]='{names[0]}': is '{names[1]}' in"):
        import_predictions(tmp_path / "md.json", capture_set="md", algorithm="shuffled")
    assert counts() == before
    import_predictions(tmp_path / "md.json", capture_set="md", algorithm="ordered")
    assert Classification.objects.get(algorithm__key="ordered").taxon.name == "ursusamericanus"


def test_an_empty_or_broken_json_file_is_refused_as_json_not_read_as_records(tmp_path):
    """A cut-off export must not import as "nothing new", nor fail on fields of JSON Lines records."""
    for name in ("empty.json", "empty.jsonl"):
        (tmp_path / name).write_bytes(b"\n")
        with pytest.raises(InputError, match=rf"{name}'?: is empty: no predictions"):
            import_predictions(tmp_path / name, capture_set="md")
    (tmp_path / "nan.json").write_text('{\n  "images": [{"file": "a.jpg", "detections": [{"conf": NaN}]}]\n}\n')
    with pytest.raises(InputError, match=r"is not valid JSON .*at line 2, column 56: 'NaN"):
        import_predictions(tmp_path / "nan.json", capture_set="md")
    assert counts() == (0, 0, 0)


def test_a_file_with_a_byte_order_mark_reads_as_without(shared_data, tmp_path):
    """Windows tools write one before UTF-8 text; JSON Lines were already read past it."""
    data = (shared_data / "megadetector" / "format_example.json").read_bytes()
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + data)
    import_predictions(tmp_path / "bom.json", capture_set="md", lineage_ranks=MD_RANKS)
    assert counts() == (2, 4, 1)


def test_two_antenna_images_sharing_a_url_are_refused_not_merged(shared_data, tmp_path):
    """The import keys an image by its url: one capture's detections would go to the other's id."""
    response = antenna_response(shared_data, 10)
    first, second = response["source_images"][:2]
    second["url"] = first["url"]
    (tmp_path / "response.json").write_text(json.dumps(response))
    at = next(i for i, d in enumerate(response["detections"]) if d["source_image_id"] == second["id"])
    expected = rf"detections\[{at}\].source_image_id='{second['id']}': its image has the url of image '{first['id']}'"
    with pytest.raises(InputError, match=rf"{expected} \('{re.escape(first['url'])}'\)"):
        import_predictions(tmp_path / "response.json", capture_set="antenna")
    assert counts() == (0, 0, 0)
