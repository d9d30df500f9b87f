"""A pass on a file taxopost already wrote: the same task replaces its earlier output (undoing it
where the new run leaves a row as it was), another task chains on it, and the same config
changes nothing. On the real MegaDetector, SpeciesNet and Antenna samples."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from taxopost.core.masking import class_masking
from taxopost.core.rollup import rank_rollup
from taxopost.core.taxonomy import Taxonomy
from taxopost.errors import InputError
from taxopost.io import read_taxonomy
from taxopost.io.predictions.formats import read_detection_file, write_detection_file
from taxopost.io.predictions.megadetector import ORIGINAL_KEY
from taxopost.io.predictions.revision import Revision
from taxopost.io.predictions.steps import STEPS_KEY
from tests.io.samples import antenna_response, validate_megadetector

pytestmark = pytest.mark.shared_data
MD_RANKS = ("kingdom", "phylum", "class", "order", "family", "species")
TO_URSIDAE = {"species": 0.95, "family": 0.9}  # the bear (0.901) rolls up to its family
TO_MAMMALIA = {"species": 0.95, "class": 0.99}  # ... or to its class (0.997)
CONFIDENT = {"species": 0.5}  # the bear stays


@pytest.fixture
def md_example(shared_data: Path) -> Path:
    return shared_data / "megadetector" / "format_example.json"


@pytest.fixture
def ami(shared_data: Path) -> Taxonomy:
    return read_taxonomy(shared_data / "ami" / "taxonomy_map.csv", id_column="speciesKey")


def read(path: Path, task: str | None, taxonomy: Taxonomy | None = None):
    ranks = MD_RANKS if json.loads(path.read_bytes()).get("images") is not None else None
    file = read_detection_file(path, lineage_ranks=ranks, task=task)
    return file, file.category_map(taxonomy)


def rollup(source: Path, out: Path, thresholds: dict, taxonomy: Taxonomy | None = None) -> Path:
    file, cmap = read(source, "rank_rollup", taxonomy)
    write_detection_file(out, file, Revision.of_rollup(rank_rollup(file.scores, cmap, thresholds=thresholds), cmap))
    return out


def mask(
    source: Path, out: Path, names: list[str] | None = None, keep: np.ndarray | None = None, taxonomy=None
) -> Path:
    file, cmap = read(source, "class_masking", taxonomy)
    if keep is None:
        keep = cmap.admitted_by([file.taxonomy.index(name) for name in names])
    write_detection_file(out, file, Revision.of_masking(class_masking(file.scores, cmap, keep), cmap))
    return out


def named(path: Path) -> list:
    """A MegaDetector file's images with every category id (in pairs and steps) replaced by its name."""
    doc = json.loads(path.read_text())
    names = doc["classification_categories"]

    def rename(pairs: list) -> list:
        return [[names[key], conf] for key, conf in pairs]

    for image in doc["images"]:
        for det in image.get("detections") or ():
            for key in ("classifications", ORIGINAL_KEY):
                if key in det:
                    det[key] = rename(det[key])
            for step in det.get(STEPS_KEY, ()):
                if "input" in step:
                    step["input"] = rename(step["input"])
    return doc["images"]


# -- MegaDetector ---------------------------------------------------------------------------


def test_megadetector_rollup_again_with_another_config_is_one_rollup_with_it(md_example, tmp_path):
    first = rollup(md_example, tmp_path / "ursidae.json", TO_URSIDAE)
    twice = rollup(first, tmp_path / "twice.json", TO_MAMMALIA)
    once = rollup(md_example, tmp_path / "once.json", TO_MAMMALIA)
    validate_megadetector(twice)
    assert named(twice) == named(once)
    det = named(twice)[0]["detections"][0]
    assert det["classifications"] == [["mammalia", pytest.approx(0.997)]]  # from the model's pairs, not ursidae's
    assert det[STEPS_KEY] == [{"task": "rank_rollup"}]


def test_megadetector_rollup_again_that_leaves_the_row_restores_the_models_pairs(md_example, tmp_path):
    first = rollup(md_example, tmp_path / "ursidae.json", TO_URSIDAE)
    again = rollup(first, tmp_path / "again.json", CONFIDENT)
    validate_megadetector(again)
    assert json.loads(again.read_text())["images"] == json.loads(md_example.read_text())["images"]
    file, _ = read(again, "rank_rollup")
    assert not file.replaces.any()


def test_megadetector_same_config_again_changes_nothing(md_example, tmp_path):
    first = rollup(md_example, tmp_path / "ursidae.json", TO_URSIDAE)
    det = json.loads(first.read_text())["images"][0]["detections"][0]
    assert det[STEPS_KEY] == [{"task": "rank_rollup"}]
    assert rollup(first, tmp_path / "again.json", TO_URSIDAE).read_bytes() == first.read_bytes()
    masked = mask(md_example, tmp_path / "masked.json", ["canidae", "cervidae"])
    assert json.loads(masked.read_text())["images"][0]["detections"][0][STEPS_KEY] == [{"task": "class_masking"}]
    assert mask(masked, tmp_path / "masked2.json", ["canidae", "cervidae"]).read_bytes() == masked.read_bytes()


def test_megadetector_mask_again_is_one_masking_with_the_second_list(md_example, tmp_path):
    first = mask(md_example, tmp_path / "first.json", ["canidae", "cervidae"])
    twice = mask(first, tmp_path / "twice.json", ["ursidae", "alcesalces"])
    once = mask(md_example, tmp_path / "once.json", ["ursidae", "alcesalces"])
    validate_megadetector(twice)
    assert twice.read_bytes() == once.read_bytes()
    det = json.loads(twice.read_text())["images"][0]["detections"][0]
    assert det["classifications"][0] == ["3", pytest.approx(0.901 / 0.926, abs=1e-6)]  # the bear is back
    unmasked = mask(first, tmp_path / "all.json", ["animalia"])  # nothing removed: the masking is undone
    assert json.loads(unmasked.read_text())["images"] == json.loads(md_example.read_text())["images"]


def test_megadetector_rollup_after_masking_chains_and_is_replaced_on_its_own(md_example, tmp_path):
    masked = mask(md_example, tmp_path / "masked.json", ["canidae", "cervidae"])
    masked_pairs = json.loads(masked.read_text())["images"][0]["detections"][0]["classifications"]
    rolled = rollup(masked, tmp_path / "rolled.json", TO_URSIDAE)
    validate_megadetector(rolled)
    det = named(rolled)[0]["detections"][0]
    assert det["classifications"] == [["cervidae", pytest.approx(1.0, abs=1e-5)]]  # the masked pairs, rolled up
    assert det[ORIGINAL_KEY] == [["bear", 0.901], ["elk", 0.071], ["moose", 0.025]]
    assert det[STEPS_KEY] == [
        {"task": "class_masking"},
        {"task": "rank_rollup", "input": [["elk", masked_pairs[0][1]], ["moose", masked_pairs[1][1]]]},
    ]
    imported, _ = read(rolled, None)  # the importer reads the current answer
    assert imported.scores.dense()[0].max() == pytest.approx(1.0, abs=1e-5)
    assert rollup(rolled, tmp_path / "again.json", TO_URSIDAE).read_bytes() == rolled.read_bytes()
    undone = rollup(rolled, tmp_path / "undone.json", CONFIDENT)  # elk (0.74) is confident: back to the masking
    validate_megadetector(undone)
    assert json.loads(undone.read_text())["images"] == json.loads(masked.read_text())["images"]
    file, cmap = read(rolled, "class_masking")  # another task chains on the roll-up's output
    assert not file.replaces.any() and file.scores.dense()[0].max() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="read for 'class_masking'"):
        result = rank_rollup(file.scores, cmap, thresholds=CONFIDENT)
        write_detection_file(tmp_path / "x.json", file, Revision.of_rollup(result, cmap))


def _with_steps(change):
    def apply(det: dict) -> None:
        det[ORIGINAL_KEY] = [["3", 0.901], ["1", 0.071], ["4", 0.025]]
        det["classifications"] = [["1", 0.5]]
        det[STEPS_KEY] = [{"task": "rank_rollup"}]
        change(det)

    return apply


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda det: det.update(classifications=5), r"detections\[0\].classifications=5", "must be a list"),
        (lambda det: det.update(classifications={}), r"detections\[0\].classifications=\{\}", "must be a list"),
        (_with_steps(lambda det: det.update(postprocessing=5)), r"detections\[0\].postprocessing=5", "non-empty list"),
        (
            _with_steps(lambda det: det.update(postprocessing=[{"task": 3}])),
            r"detections\[0\].postprocessing\[0\].task=3",
            "name of its task",
        ),
        (
            _with_steps(lambda det: det.update(postprocessing=["rank_rollup"])),
            r"detections\[0\].postprocessing\[0\]='rank_rollup'",
            "JSON object",
        ),
        (
            _with_steps(lambda det: det[STEPS_KEY][0].update(input="x")),
            r"detections\[0\].postprocessing\[0\].input='x'",
            "must be a JSON list",
        ),
        (
            _with_steps(lambda det: det.pop(ORIGINAL_KEY)),
            rf"detections\[0\].{ORIGINAL_KEY}=None",
            "is missing",
        ),
        (
            _with_steps(lambda det: det[STEPS_KEY][0].update(input=[["9", 0.5]])),
            r"detections\[0\].postprocessing\[0\].input\[0\]='9'",
            "no such category",
        ),
        (
            _with_steps(lambda det: det[STEPS_KEY][0].update(input=[["1", 0.1], ["3", 0.5]])),
            r"detections\[0\].postprocessing\[0\].input\[1\]=0.5",
            "sorted by descending",
        ),
        (
            _with_steps(lambda det: det.update({ORIGINAL_KEY: [["3"]]})),
            rf"detections\[0\].{ORIGINAL_KEY}\[0\]=\['3'\]",
            r"\[id, confidence\] pair",
        ),
        (
            _with_steps(lambda det: det.update({ORIGINAL_KEY: 7})),
            rf"detections\[0\].{ORIGINAL_KEY}=7",
            "must be a list",
        ),
    ],
)
def test_megadetector_bad_postprocessing_records_are_named(md_example, tmp_path, change, path, message):
    doc = json.loads(md_example.read_text())
    change(doc["images"][0]["detections"][0])
    source = tmp_path / "in.json"
    source.write_text(json.dumps(doc))
    with pytest.raises(InputError) as caught:
        read_detection_file(source, lineage_ranks=MD_RANKS, task="rank_rollup")
    assert str(source) in str(caught.value)
    assert re.search(rf"images\[0\]\.{path}.*{message}", str(caught.value)), str(caught.value)


# -- SpeciesNet -----------------------------------------------------------------------------

ROLL_BOTH = {"species": 0.999, "genus": 0.995, "class": 0.99}  # the elephant (0.9922) and the ocelot (0.9937) roll up
ROLL_ELEPHANT = {"species": 0.993, "family": 0.99}  # the elephant to elephantidae; the ocelot stays


def test_speciesnet_rollup_again_is_one_rollup_with_the_second_config(shared_data, tmp_path):
    original = shared_data / "speciesnet" / "predict_full_ensemble.json"
    first = rollup(original, tmp_path / "first.json", ROLL_BOTH)
    sources = [p["prediction_source"] for p in json.loads(first.read_text())["predictions"]]
    assert sources == ["classifier+rollup_to_class", "classifier+rollup_to_genus"]
    twice = rollup(first, tmp_path / "twice.json", ROLL_ELEPHANT)
    once = rollup(original, tmp_path / "once.json", ROLL_ELEPHANT)
    assert json.loads(twice.read_text()) == json.loads(once.read_text())
    elephant, ocelot = json.loads(twice.read_text())["predictions"]
    assert elephant["prediction_source"] == "classifier+rollup_to_family"
    before = json.loads(original.read_text())["predictions"]
    fields = ("prediction", "prediction_score", "prediction_source")
    assert elephant[STEPS_KEY] == [{"task": "rank_rollup", "before": {k: before[0][k] for k in fields}}]
    assert ocelot == before[1]  # left confident: the first roll-up undone
    assert rollup(twice, tmp_path / "again.json", ROLL_ELEPHANT).read_bytes() == twice.read_bytes()


def test_speciesnet_rollup_after_masking_is_undone_back_to_the_masking(shared_data, tmp_path):
    original = shared_data / "speciesnet" / "predict_full_ensemble.json"
    masked = mask(original, tmp_path / "masked.json", ["bovidae"])
    rolled = rollup(masked, tmp_path / "rolled.json", ROLL_BOTH)
    elephant = json.loads(rolled.read_text())["predictions"][0]
    assert [step["task"] for step in elephant[STEPS_KEY]] == ["class_masking", "rank_rollup"]
    assert elephant[STEPS_KEY][1]["before"]["prediction_source"] == "classifier+class_masking"
    undone = rollup(rolled, tmp_path / "undone.json", {"species": 0.5})
    assert json.loads(undone.read_text()) == json.loads(masked.read_text())
    unmasked = mask(masked, tmp_path / "unmasked.json", ["mammalia"])
    assert json.loads(unmasked.read_text()) == json.loads(original.read_text())


def test_speciesnet_bad_postprocessing_record_is_named(shared_data, tmp_path):
    doc = json.loads((shared_data / "speciesnet" / "predict_full_ensemble.json").read_text())
    doc["predictions"][1][STEPS_KEY] = [{"task": "rank_rollup", "before": "classifier"}]
    (tmp_path / "in.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"predictions\[1\]\.postprocessing\[0\]\.before='classifier'.*JSON object"):
        read_detection_file(tmp_path / "in.json", task="rank_rollup")


# -- Antenna --------------------------------------------------------------------------------


def without_timestamps(path: Path) -> dict:
    doc = json.loads(path.read_text())
    for det in doc["detections"]:
        for classification in det["classifications"]:
            if classification["algorithm"]["key"].startswith("taxopost-"):
                classification.pop("timestamp")
    return doc


@pytest.fixture
def response(shared_data: Path, tmp_path: Path) -> Path:
    path = tmp_path / "response.json"
    path.write_text(json.dumps(antenna_response(shared_data)))
    return path


def _keep(start: int, stop: int) -> np.ndarray:
    keep = np.zeros(40, dtype=bool)
    keep[start:stop] = True
    return keep


def test_antenna_mask_again_is_one_masking_with_the_second_list(response, tmp_path, ami):
    first = mask(response, tmp_path / "first.json", keep=_keep(0, 20), taxonomy=ami)
    twice = mask(first, tmp_path / "twice.json", keep=_keep(10, 30), taxonomy=ami)
    once = mask(response, tmp_path / "once.json", keep=_keep(10, 30), taxonomy=ami)
    assert without_timestamps(twice) == without_timestamps(once)
    detections = json.loads(twice.read_text())["detections"]
    keys = [[c["algorithm"]["key"] for c in det["classifications"]] for det in detections]
    assert max(k.count("taxopost-class-masking") for k in keys) == 1  # replaced, not stacked on
    undone = mask(first, tmp_path / "all.json", keep=_keep(0, 40), taxonomy=ami)  # nothing removed: every row as it was
    assert json.loads(undone.read_text()) == json.loads(response.read_text())


def test_antenna_rollup_again_replaces_undoes_and_changes_nothing_on_the_same_config(response, tmp_path, ami):
    first = rollup(response, tmp_path / "first.json", {"species": 0.8, "genus": 0.6, "family": 0.4}, ami)
    assert rollup(first, tmp_path / "again.json", {"species": 0.8, "genus": 0.6, "family": 0.4}, ami).read_text() == (
        first.read_text()
    )  # the earlier output kept, timestamps and all
    undone = rollup(first, tmp_path / "undone.json", {"species": 0.01}, ami)  # every row confident
    assert json.loads(undone.read_text()) == json.loads(response.read_text())


def test_antenna_rollup_after_masking_chains_and_is_undone_back_to_it(response, tmp_path, ami):
    masked = mask(response, tmp_path / "masked.json", keep=_keep(0, 20), taxonomy=ami)
    rolled = rollup(masked, tmp_path / "rolled.json", {"species": 0.8, "genus": 0.6, "family": 0.4}, ami)
    file, cmap = read(masked, None, ami)
    expected = rank_rollup(file.scores, cmap)  # the masked vectors rolled up
    doc = json.loads(rolled.read_text())
    row = int(np.flatnonzero(expected.changed)[0])
    keys = [c["algorithm"]["key"] for c in doc["detections"][row]["classifications"]]
    assert keys[1:] == ["taxopost-class-masking", "taxopost-rank-rollup"]
    assert doc["detections"][row]["classifications"][-1]["scores"] == [pytest.approx(float(expected.score[row]))]
    undone = rollup(rolled, tmp_path / "undone.json", {"species": 0.01}, ami)
    assert json.loads(undone.read_text()) == json.loads(masked.read_text())
