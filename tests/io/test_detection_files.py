"""MegaDetector, SpeciesNet and Antenna files: read on the real samples and generated files, written
back and read again; bad input named by file, JSON path and value."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from taxopost.core.masking import class_masking
from taxopost.core.rollup import rank_rollup
from taxopost.core.taxonomy import NO_TAXON
from taxopost.errors import InputError
from taxopost.io import read_taxonomy
from taxopost.io.predictions.detections import parse_ranks
from taxopost.io.predictions.formats import read_detection_file, write_detection_file
from taxopost.io.predictions.megadetector import ORIGINAL_KEY, megadetector_records
from taxopost.io.predictions.revision import Revision
from tests.io.samples import antenna_response, validate_megadetector

pytestmark = pytest.mark.shared_data
MD_RANKS = ("kingdom", "phylum", "class", "order", "family", "species")


@pytest.fixture
def md_example(shared_data: Path) -> Path:
    return shared_data / "megadetector" / "format_example.json"


@pytest.fixture
def speciesnet(shared_data: Path) -> Path:
    return shared_data / "speciesnet"


def megadetector_doc(descriptions: dict[str, str] | None, detections: list[dict]) -> dict:
    doc = {
        "info": {"format_version": "1.5"},
        "detection_categories": {"1": "animal"},
        "classification_categories": {"0": "a", "1": "b", "3": "c"},
        "images": [{"file": "x.jpg", "detections": detections}],
    }
    if descriptions is not None:
        doc["classification_category_descriptions"] = descriptions
    return doc


SPECIESNET_DESCRIPTIONS = {
    "0": "11111111-1111-1111-1111-111111111111;mammalia;carnivora;canidae;vulpes;vulpes;red fox",
    "1": "22222222-2222-2222-2222-222222222222;mammalia;carnivora;canidae;vulpes;lagopus;arctic fox",
    "3": ";;;;;;blank",
}


def write_json(tmp_path: Path, doc: dict, name: str = "in.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


# -- MegaDetector ---------------------------------------------------------------------------


def test_megadetector_example_reads_its_detections_and_plain_lineage(md_example):
    file = read_detection_file(md_example, lineage_ranks=MD_RANKS)
    assert file.format == "megadetector"
    assert file.n_detections == 4  # two on the image, two video frames; the empty and failed images have none
    assert file.classified.tolist() == [0]  # the second detection has no classifications: detector-only
    np.testing.assert_allclose(file.scores.dense()[0], [0, 0.071, 0, 0.901, 0.025], rtol=1e-6)
    cmap = file.category_map()
    assert cmap.taxon_names() == ["vulpesvulpes", "cervuscanadensis", "canislupus", "ursusamericanus", "alcesalces"]
    bear = file.taxonomy.index("ursusamericanus")
    assert [file.taxonomy.names[t] for t in file.taxonomy.lineage(bear)][1:] == [
        "ursidae", "carnivora", "mammalia", "chordata", "animalia",
    ]  # fmt: skip
    frames = [
        (image["file"].rsplit("/", 1)[-1], det.get("frame_number")) for _, image, det in megadetector_records(file)
    ]
    assert frames[1:] == [("image_with_animal.jpg", None), ("video_with_person.mp4", 0), ("video_with_person.mp4", 20)]


def test_megadetector_plain_lineage_needs_its_ranks(md_example):
    with pytest.raises(InputError, match=r"classification_category_descriptions\['0'\]='animalia;.*--lineage-ranks"):
        read_detection_file(md_example)


def test_megadetector_speciesnet_descriptions_give_the_taxonomy(tmp_path):
    pairs = [["1", 0.5], ["0", 0.3], ["3", 0.1]]
    path = write_json(
        tmp_path,
        megadetector_doc(
            SPECIESNET_DESCRIPTIONS,
            [{"category": "1", "conf": 0.9, "bbox": [0, 0, 0.5, 0.5], "classifications": pairs}],
        ),
    )
    file = read_detection_file(path)
    cmap = file.category_map()
    assert cmap.taxon_names() == ["vulpes vulpes", "vulpes lagopus", None]  # blank has no taxon
    result = rank_rollup(file.scores, cmap)
    assert (file.taxonomy.names[result.taxon[0]], float(result.score[0])) == ("vulpes", pytest.approx(0.8))


def test_megadetector_rollup_written_back_passes_its_validator_and_reads_again(md_example, tmp_path):
    file = read_detection_file(md_example, lineage_ranks=MD_RANKS)
    cmap = file.category_map()
    result = rank_rollup(file.scores, cmap, thresholds={"species": 0.95, "family": 0.9})
    out = tmp_path / "out.json"
    write_detection_file(out, file, Revision.of_rollup(result, cmap))
    validate_megadetector(out)
    doc = json.loads(out.read_text())
    det = doc["images"][0]["detections"][0]
    assert det[ORIGINAL_KEY] == [["3", 0.901], ["1", 0.071], ["4", 0.025]]
    ((new_id, score),) = det["classifications"]
    assert doc["classification_categories"][new_id] == "ursidae"
    assert doc["classification_category_descriptions"][new_id] == "animalia;chordata;mammalia;carnivora;ursidae;"
    assert score == pytest.approx(0.901)
    assert "classifications" not in doc["images"][0]["detections"][1]  # detector-only, untouched
    assert doc["images"][4] == json.loads(md_example.read_text())["images"][4]  # the failed image as it was
    again = read_detection_file(out, lineage_ranks=MD_RANKS)
    rerun = rank_rollup(again.scores, again.category_map(), thresholds={"species": 0.95, "family": 0.9})
    assert not rerun.changed.any()  # rolled up once is rolled up for good


def test_megadetector_masking_written_back_keeps_the_pairs_still_scoring(tmp_path):
    path = write_json(
        tmp_path,
        megadetector_doc(
            SPECIESNET_DESCRIPTIONS,
            [{"category": "1", "conf": 0.9, "bbox": [0, 0, 0.5, 0.5], "classifications": [["1", 0.5], ["0", 0.3]]}],
        ),
    )
    file = read_detection_file(path)
    cmap = file.category_map()
    keep = np.array([True, False, False])
    masked = class_masking(file.scores, cmap, keep, reweight=False)
    out = tmp_path / "out.json"
    write_detection_file(out, file, Revision.of_masking(masked, cmap))
    validate_megadetector(out)
    det = json.loads(out.read_text())["images"][0]["detections"][0]
    assert det["classifications"] == [["0", pytest.approx(0.3)]]
    assert det[ORIGINAL_KEY] == [["1", 0.5], ["0", 0.3]]


def test_megadetector_rollup_after_masking_keeps_the_models_original_pairs(tmp_path):
    pairs = [["1", 0.5], ["0", 0.3], ["3", 0.1]]
    path = write_json(
        tmp_path,
        megadetector_doc(
            SPECIESNET_DESCRIPTIONS,
            [{"category": "1", "conf": 0.9, "bbox": [0, 0, 0.5, 0.5], "classifications": pairs}],
        ),
    )
    file = read_detection_file(path)
    cmap = file.category_map()
    masked = class_masking(file.scores, cmap, np.array([True, True, False]))
    write_detection_file(tmp_path / "masked.json", file, Revision.of_masking(masked, cmap))
    validate_megadetector(tmp_path / "masked.json")
    again = read_detection_file(tmp_path / "masked.json")
    rolled = rank_rollup(again.scores, again.category_map())
    assert rolled.changed.all()
    write_detection_file(tmp_path / "rolled.json", again, Revision.of_rollup(rolled, again.category_map()))
    validate_megadetector(tmp_path / "rolled.json")
    doc = json.loads((tmp_path / "rolled.json").read_text())
    det = doc["images"][0]["detections"][0]
    assert det[ORIGINAL_KEY] == pairs  # the model's, not the masked ones
    ((new_id, score),) = det["classifications"]
    assert doc["classification_categories"][new_id] == "vulpes" and score == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda d: d.pop("detection_categories"), "file", "not a MegaDetector"),
        (lambda d: d["info"].pop("format_version"), r"info.format_version=None", "is missing"),
        (
            lambda d: d["images"][0]["detections"][0].update(classifications=[["9", 0.5]]),
            r"images\[0\].detections\[0\].classifications\[0\]='9'",
            "no such category",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(classifications=[["0", 1.5]]),
            r"images\[0\].detections\[0\].classifications\[0\]=1.5",
            r"in \[0, 1\]",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(classifications=[["0", 0.1], ["1", 0.5]]),
            r"images\[0\].detections\[0\].classifications\[1\]=0.5",
            "sorted by descending confidence",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(classifications=[["0", 0.5], ["0", 0.1]]),
            r"classifications\[1\]='0'",
            "appears twice",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(classifications=[["0"]]),
            r"classifications\[0\]=\['0'\]",
            r"\[id, confidence\] pair",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(classifications=[["0", True]]),
            r"images\[0\].detections\[0\].classifications\[0\]=\['0', True\]",
            "a string id and a number",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(classifications=5),
            r"images\[0\].detections\[0\].classifications=5",
            r"must be a list of \[id, confidence\] pairs",
        ),
        (
            lambda d: d["classification_category_descriptions"].update({"1": "x;mammalia;;;;;a"}),
            r"classification_category_descriptions\['1'\]='x;mammalia;;;;;a'",
            "not SpeciesNet's",
        ),
        (
            lambda d: d["classification_category_descriptions"].update(
                {"1": ";mammalia;carnivora;felidae;vulpes;lagopus;x"}
            ),
            r"classification_category_descriptions\['1'\]='vulpes'",
            "parent 'felidae' here but 'canidae'",
        ),
        (
            lambda d: d["classification_category_descriptions"].update({"3": ";mammalia;mammalia;;;;x"}),
            r"classification_category_descriptions\['3'\]='mammalia'",
            "appears twice in one lineage",
        ),
        (
            lambda d: d["images"].append({"file": "y.jpg", "detections": None}),
            r"images\[1\].detections=None",
            "only a failed image",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(bbox=["a", 0, 1, 1]),
            r"images\[0\].detections\[0\].bbox=\['a', 0, 1, 1\]",
            "4 finite numbers",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(bbox=[0, 0, 1]),
            r"images\[0\].detections\[0\].bbox=\[0, 0, 1\]",
            "4 finite numbers",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(bbox=[0, 0, 1, True]),
            r"images\[0\].detections\[0\].bbox=\[0, 0, 1, True\]",
            "4 finite numbers",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(conf="high"),
            r"images\[0\].detections\[0\].conf='high'",
            r"a number in \[0, 1\]",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(conf=1.5),
            r"images\[0\].detections\[0\].conf=1.5",
            r"a number in \[0, 1\]",
        ),
        # What MegaDetector's validator refuses is refused on reading, not carried into the file written.
        (
            lambda d: d["images"][0]["detections"][0].update(category="7"),
            r"images\[0\].detections\[0\].category='7'",
            r"must be a key of detection_categories \['1'\]",
        ),
        (
            lambda d: d["images"][0]["detections"][0].pop("category"),
            r"images\[0\].detections\[0\].category=None",
            "must be a key of detection_categories",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(category=["1"]),
            r"images\[0\].detections\[0\].category=\['1'\]",
            "must be a key of detection_categories",
        ),
        (
            lambda d: d.update(detection_categories={"a": "animal"}),
            r"detection_categories\['a'\]='animal'",
            r"keys are integers as text",
        ),
        (
            lambda d: d["images"][0].update(failure="File not found"),
            r"images\[0\].failure='File not found'",
            r"a failed image has no detections",
        ),
    ],
)
def test_megadetector_bad_input_names_file_path_and_value(tmp_path, change, path, message):
    doc = megadetector_doc(
        dict(SPECIESNET_DESCRIPTIONS),
        [{"category": "1", "conf": 0.9, "bbox": [0, 0, 1, 1], "classifications": [["0", 0.5]]}],
    )
    change(doc)
    source = write_json(tmp_path, doc)
    with pytest.raises(InputError) as caught:
        read_detection_file(source)
    assert str(source) in str(caught.value)
    assert __import__("re").search(f"{path}.*{message}", str(caught.value)), str(caught.value)


def test_megadetector_lineage_ranks_must_match_the_fields(md_example):
    with pytest.raises(InputError, match=r"has 6 fields but --lineage-ranks names 3"):
        read_detection_file(md_example, lineage_ranks=("class", "order", "family"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kingdom,kingdom,class,order,family,species", "names kingdom twice"),
        ("kingdom,phylum,order,class,family,genus,species", "class is coarser than order before it"),
    ],
)
def test_lineage_ranks_are_each_rank_once_coarse_to_fine(text, message):
    """A repeated rank made a kingdom's child a kingdom and rolled up to it."""
    with pytest.raises(InputError, match=f"--lineage-ranks='{text}': {message}"):
        parse_ranks(text, "--lineage-ranks")
    assert parse_ranks("Kingdom, phylum,class", "--lineage-ranks") == ("kingdom", "phylum", "class")


# -- SpeciesNet -----------------------------------------------------------------------------


def test_speciesnet_predictions_read_top5_and_lineage_from_labels(speciesnet):
    file = read_detection_file(speciesnet / "predict_full_ensemble.json")
    assert file.format == "speciesnet" and len(file.scores) == 2
    sums = file.scores.dense().sum(axis=1)
    assert (sums < 1).all() and (sums > 0.99).all()  # top 5 of the classifier: partial rows
    cmap = file.category_map()
    first = cmap.taxon_names()[0]
    assert first == "loxodonta africana"
    taxonomy = file.taxonomy
    assert [taxonomy.names[t] for t in taxonomy.lineage(taxonomy.index(first))] == [
        "loxodonta africana", "loxodonta", "elephantidae", "proboscidea", "mammalia",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "name", ["classify_only.json", "predict_geofenced_country.json", "predict_geofence_disabled.json"]
)
def test_speciesnet_samples_roll_up(speciesnet, name):
    file = read_detection_file(speciesnet / name)
    result = rank_rollup(file.scores, file.category_map())
    n = len(json.loads((speciesnet / name).read_text())["predictions"])
    assert len(result) == n and (result.source_taxon != NO_TAXON).all()


def test_speciesnet_detect_only_has_detections_and_no_classification(speciesnet):
    file = read_detection_file(speciesnet / "detect_only.json")
    assert len(file.scores) == 0 and file.n_detections == 2


def test_speciesnet_rollup_written_back_like_speciesnet_records_its_own(speciesnet, tmp_path):
    file = read_detection_file(speciesnet / "predict_full_ensemble.json")
    cmap = file.category_map()
    result = rank_rollup(file.scores, cmap, thresholds={"species": 0.999, "genus": 0.995, "class": 0.99})
    assert result.changed.all()
    out = tmp_path / "out.json"
    write_detection_file(out, file, Revision.of_rollup(result, cmap))
    doc = json.loads(out.read_text())
    elephant = doc["predictions"][0]
    assert elephant["prediction"] == ";mammalia;;;;;mammalia"
    assert elephant["prediction_source"] == "classifier+rollup_to_class"
    assert elephant["prediction_score"] == pytest.approx(float(result.score[0]))
    original = json.loads((speciesnet / "predict_full_ensemble.json").read_text())
    assert elephant["classifications"] == original["predictions"][0]["classifications"]
    again = read_detection_file(out)
    np.testing.assert_array_equal(again.scores.dense(), file.scores.dense())


def test_speciesnet_masking_written_back_names_its_step(speciesnet, tmp_path):
    file = read_detection_file(speciesnet / "predict_full_ensemble.json")
    cmap = file.category_map()
    keep = cmap.admitted_by([file.taxonomy.index("bovidae")])  # no elephant, no ocelot: a bovid wins
    masked = class_masking(file.scores, cmap, keep)
    write_detection_file(tmp_path / "out.json", file, Revision.of_masking(masked, cmap))
    elephant = json.loads((tmp_path / "out.json").read_text())["predictions"][0]
    assert elephant["prediction"].endswith(";mammalia;cetartiodactyla;bovidae;eudorcas;thomsonii;thomson's gazelle")
    assert elephant["prediction_source"] == "classifier+class_masking"
    assert elephant["prediction_score"] == pytest.approx(0.00092394 / (0.00092394 + 0.00084683 + 0.00056272), rel=1e-4)


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (
            lambda p: p["classifications"]["scores"].pop(),
            r"predictions\[0\].classifications.scores='4 scores'",
            "for 5 classes",
        ),
        (
            lambda p: p["classifications"]["scores"].__setitem__(0, 1.2),
            r"predictions\[0\].classifications.scores\[0\]=1.2",
            r"\[0, 1\]",
        ),
        (
            lambda p: p["classifications"]["scores"].reverse(),
            r"predictions\[0\].classifications.scores\[1\]",
            "descending",
        ),
        (
            lambda p: p["classifications"]["scores"].__setitem__(3, None),
            r"predictions\[0\].classifications.scores\[3\]=None",
            "a confidence must be a number",
        ),
        (
            lambda p: p["classifications"]["classes"].__setitem__(1, "gazelle"),
            r"classes\[1\]='gazelle'",
            "not SpeciesNet's",
        ),
        (lambda p: p.pop("filepath"), r"predictions\[0\].filepath=None", "is missing"),
        (
            lambda p: p["detections"][0].update(bbox=[0, "x", 1, 1]),
            r"predictions\[0\].detections\[0\].bbox=\[0, 'x', 1, 1\]",
            "4 finite numbers",
        ),
        (
            lambda p: p["classifications"]["classes"].__setitem__(
                1, ";mammalia;carnivora;bovidae;eudorcas;thomsonii;x"
            ),
            r"predictions\[0\].classifications.classes\[2\]='bovidae'",
            r"parent 'cetartiodactyla' here but 'carnivora' in predictions\[0\].classifications.classes\[1\]",
        ),
        (
            lambda p: p["classifications"]["classes"].__setitem__(1, p["classifications"]["classes"][0]),
            r"predictions\[0\].classifications.classes\[1\]=.*",
            r"given twice in one prediction \(also classes\[0\]\)",
        ),
        (  # without the fields it overwrote, undoing the step would delete the model's prediction
            lambda p: p.update(postprocessing=[{"task": "rank_rollup"}]),
            r"predictions\[0\].postprocessing\[0\].before=None",
            "is missing: a step keeps the prediction fields it overwrote",
        ),
    ],
)
def test_speciesnet_bad_input_names_file_path_and_value(speciesnet, tmp_path, change, path, message):
    doc = json.loads((speciesnet / "predict_full_ensemble.json").read_text())
    change(doc["predictions"][0])
    source = write_json(tmp_path, doc)
    with pytest.raises(InputError) as caught:
        read_detection_file(source, format="speciesnet")
    assert str(source) in str(caught.value)
    assert __import__("re").search(f"{path}.*{message}", str(caught.value)), str(caught.value)


# -- Antenna --------------------------------------------------------------------------------


def test_antenna_recorded_response_without_labels_is_refused_clearly(shared_data):
    path = shared_data / "antenna" / "processing_service" / "process_random-detection-random-species.json"
    with pytest.raises(InputError, match=r"algorithms\['random-species-classifier'\]=None: no category map"):
        read_detection_file(path)


def test_antenna_binary_classifier_labels_come_from_the_classification(shared_data, tmp_path):
    doc = json.loads(
        (shared_data / "antenna" / "processing_service" / "process_random-detection-random-species.json").read_text()
    )
    for det in doc["body"]["detections"]:
        det["classifications"] = det["classifications"][:1]
        det["classifications"][0]["terminal"] = True
    file = read_detection_file(write_json(tmp_path, doc))
    assert file.labels == ("Moth", "Not a moth") and len(file.scores) == 3


def test_antenna_response_rolls_up_through_gbif_keys_and_round_trips(shared_data, tmp_path):
    source = write_json(tmp_path, antenna_response(shared_data))
    file = read_detection_file(source)
    assert file.format == "antenna" and len(file.scores) == 60 and file.scores.n_classes == 40
    taxonomy = read_taxonomy(shared_data / "ami" / "taxonomy_map.csv", id_column="speciesKey")
    cmap = file.category_map(taxonomy)
    assert cmap.unresolved == ()
    result = rank_rollup(file.scores, cmap)
    out = tmp_path / "out.json"
    write_detection_file(out, file, Revision.of_rollup(result, cmap))
    doc = json.loads(out.read_text())
    row = int(np.flatnonzero(result.changed)[0])
    det = doc["detections"][row]
    assert [c["terminal"] for c in det["classifications"]] == [False, True]
    rolled = det["classifications"][-1]
    assert rolled["classification"] == taxonomy.names[result.taxon[row]]
    assert rolled["algorithm"]["key"] == "taxopost-rank-rollup"
    assert rolled["scores"] == [pytest.approx(float(result.score[row]))]
    again = read_detection_file(out)  # the roll-up's source is read again, not its one-class decision
    np.testing.assert_array_equal(again.scores.dense(), file.scores.dense())
    write_detection_file(tmp_path / "twice.json", again, Revision.of_rollup(rank_rollup(again.scores, cmap), cmap))
    twice = json.loads((tmp_path / "twice.json").read_text())["detections"][row]
    assert [c["terminal"] for c in twice["classifications"]] == [False, True]  # replaced, not stacked


def test_an_antenna_gbif_key_never_resolves_to_the_inaturalist_taxon_of_that_number(shared_data, tmp_path):
    """A GBIF key that is also some iNaturalist taxon's id is not taken for it: the label's name decides."""
    file = read_detection_file(write_json(tmp_path, antenna_response(shared_data, 5)))
    label, key = file.labels[0], file.extra["gbif_keys"][0]
    ami = read_taxonomy(shared_data / "ami" / "taxonomy_map.csv", id_column="speciesKey")
    assert ami.find(key) == ami.index(label)  # the recorded key is the label's GBIF key
    genus = label.split()[0]
    inat = tmp_path / "inat.csv"
    siblings = [other for other in file.labels[1:] if other.startswith(genus + " ")]
    inat.write_text(
        "parent_taxon_id,taxon_id,rank_level,name\n,1,70,Animalia\n"
        f"1,2,20,{genus}\n2,3,10,{label}\n1,{key},10,Homonymous bird\n"
        + "".join(f"2,{100 + i},10,{other}\n" for i, other in enumerate(siblings))
    )
    taxonomy = read_taxonomy(inat)
    cmap = file.category_map(taxonomy, on_unresolved="exclude")
    assert taxonomy.names[cmap.class_taxa[0]] == label  # not iNaturalist's taxon of that number
    assert "Homonymous bird" not in {taxonomy.names[t] for t in cmap.class_taxa if t >= 0}


def test_antenna_masking_keeps_labels_and_raw_logits(shared_data, tmp_path):
    file = read_detection_file(write_json(tmp_path, antenna_response(shared_data, 5)))
    taxonomy = read_taxonomy(shared_data / "ami" / "taxonomy_map.csv", id_column="speciesKey")
    cmap = file.category_map(taxonomy)
    keep = np.zeros(40, dtype=bool)
    keep[:20] = True
    masked = class_masking(file.scores, cmap, keep)
    out = tmp_path / "out.json"
    write_detection_file(out, file, Revision.of_masking(masked, cmap))
    doc = json.loads(out.read_text())
    for row in np.flatnonzero(masked.changed):
        source, new = doc["detections"][row]["classifications"]
        assert source["terminal"] is False and new["terminal"] is True
        assert new["logits"] == source["logits"] and len(new["scores"]) == 40
        assert sum(new["scores"][20:]) == 0 and sum(new["scores"]) == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda d: d.pop("source_images"), "file", "not a MegaDetector"),
        (
            lambda d: d["detections"][1].update(source_image_id="999"),
            r"detections\[1\].source_image_id='999'",
            "no such id",
        ),
        (
            lambda d: d["detections"][2]["classifications"][0]["scores"].__setitem__(3, 1.5),
            r"detections\[2\].classifications\[0\].scores\[3\]=1.5",
            r"in \[0, 1\]",
        ),
        (
            lambda d: d["detections"][0]["classifications"][0]["scores"].pop(),
            r"detections\[0\].classifications\[0\].scores='39 values'",
            "40 labels",
        ),
        (
            lambda d: d["detections"][1]["classifications"][0]["scores"].__setitem__(7, "high"),
            r"detections\[1\].classifications\[0\].scores\[7\]='high'",
            "must be a number",
        ),
        (  # numpy alone read null as NaN, true as 1.0 and "0.5" as 0.5
            lambda d: d["detections"][1]["classifications"][0]["scores"].__setitem__(7, None),
            r"detections\[1\].classifications\[0\].scores\[7\]=None",
            "must be a number",
        ),
        (
            lambda d: d["detections"][1]["classifications"][0]["scores"].__setitem__(5, True),
            r"detections\[1\].classifications\[0\].scores\[5\]=True",
            "must be a number",
        ),
        (
            lambda d: d["detections"][1]["classifications"][0]["scores"].__setitem__(2, "0.5"),
            r"detections\[1\].classifications\[0\].scores\[2\]='0.5'",
            "must be a number",
        ),
        (lambda d: d["detections"][0].pop("bbox"), r"detections\[0\].bbox=None", "is missing"),
    ],
)
def test_antenna_bad_input_names_file_path_and_value(shared_data, tmp_path, change, path, message):
    doc = antenna_response(shared_data, 3)
    change(doc)
    source = write_json(tmp_path, doc)
    with pytest.raises(InputError) as caught:
        read_detection_file(source)
    assert str(source) in str(caught.value)
    assert __import__("re").search(f"{path}.*{message}", str(caught.value)), str(caught.value)


def test_an_unknown_document_names_the_formats(tmp_path):
    with pytest.raises(InputError, match="not a MegaDetector .* SpeciesNet .* or Antenna"):
        read_detection_file(write_json(tmp_path, {"rows": []}))
    with pytest.raises(InputError, match="--format='coco': must be one of megadetector, speciesnet, antenna"):
        read_detection_file(write_json(tmp_path, {}), format="coco")


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_a_number_json_cannot_hold_is_located_by_line_column_and_text(tmp_path, bad):
    """msgspec counts bytes; the error says where in the file, and quotes what it stopped at."""
    path = tmp_path / "md.json"
    path.write_text(
        '{"info": {"format_version": "1.5"},\n "detection_categories": {"1": "animal"},\n'
        f' "images": [{{"file": "a.jpg", "detections": [{{"category": "1", "conf": {bad}}}]}}]}}\n'
    )
    with pytest.raises(InputError) as caught:
        read_detection_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3:") and "is not valid JSON" in message, message
    assert f"'{bad.lstrip('-')}" in message, message  # msgspec stops after a minus sign
