"""The small-size filter works on detections, as Antenna's does: detector-only detections (a
record without a vector, a MegaDetector detection without classifications) import, get their
"Not identifiable" classification applied to nothing, and a re-run changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxopost.jobs.models import Job
from taxopost.observations.models import CaptureSet, Classification, Detection
from taxopost.observations.predictions import import_predictions
from taxopost.postprocessing.running.revert import revert_job
from tests.platform.helpers import determination, run, snapshot

# Detector-only records on the fixture's capture set: images of 1000 x 1000 pixels.
BARE = [
    ("bare-tiny", "img-4.jpg", [0, 0, 10, 10]),  # 1e-4 of the image: too small
    ("bare-large", "img-4.jpg", [100, 100, 600, 600]),
    ("bare-nobox", "img-5.jpg", None),
]


def bare_record(occurrence: str, image: str, bbox: list | None) -> dict:
    record = {
        "capture_set": "station-1",
        "image": {"path": image, "width": 1000, "height": 1000},
        "occurrence": occurrence,
    }
    if bbox is None:
        record["detection"] = "whole"
    else:
        record["bbox"] = bbox
    return record


@pytest.fixture
def with_bare_detections(platform, tmp_path):
    path = tmp_path / "detections.jsonl"
    path.write_text("".join(json.dumps(bare_record(*row)) + "\n" for row in BARE))
    summary = import_predictions(path)
    assert summary.created.get("detections") == 3 and not summary.created.get("classifications")
    return platform


def test_a_detector_only_detection_that_is_too_small_becomes_not_identifiable(with_bare_detections):
    job = run("small_size_filter", with_bare_detections)
    # six classified detections and three bare ones, each examined once
    assert job.metrics["examined"] == 9
    assert job.metrics["changed"] == 2  # occ-tiny's classification and the bare tiny detection
    assert job.metrics["skipped"] == {"no bbox or image size": 2, "large enough": 5}
    assert job.metrics["transitions"] == {"species -> unknown": 1, "unclassified -> unknown": 1}
    [label] = Classification.objects.filter(detection__occurrence__key="bare-tiny")
    assert (label.taxon.name, label.score, label.terminal, label.applied_to_id) == ("Not identifiable", 1.0, True, None)
    assert label.details["relative_area"] == pytest.approx(1e-4)
    assert determination("bare-tiny") == "Not identifiable"
    assert determination("occ-tiny") == "Not identifiable"
    assert not Classification.objects.filter(detection__occurrence__key__in=["bare-large", "bare-nobox"]).exists()


def test_a_rerun_of_the_size_filter_changes_nothing(with_bare_detections):
    run("small_size_filter", with_bare_detections)
    before = snapshot()
    again = run("small_size_filter", with_bare_detections)
    assert again.metrics["changed"] == 0
    assert again.metrics["skipped"]["already not identifiable"] == 2
    assert snapshot() == before
    dry = run("small_size_filter", with_bare_detections, dry_run=True)
    assert dry.metrics["changed"] == 0


def test_a_run_with_another_threshold_rejudges_classified_detections_from_their_sources(with_bare_detections):
    first = run("small_size_filter", with_bare_detections)
    tiny = Classification.objects.get(detection__occurrence__key="occ-tiny", job=first)
    lenient = run("small_size_filter", with_bare_detections, {"size_threshold": 1e-5})
    # occ-tiny is large enough now: its label is replaced and the model's answer is current again
    tiny.refresh_from_db()
    assert (tiny.terminal, tiny.replaced_by_id) == (False, lenient.pk)
    assert determination("occ-tiny") != "Not identifiable"
    assert lenient.metrics["changed"] == 0
    # a bare detection's label has nothing below it to start again from: it stays
    assert determination("bare-tiny") == "Not identifiable"
    assert Classification.objects.get(detection__occurrence__key="bare-tiny").terminal
    revert_job(lenient)
    tiny.refresh_from_db()
    assert tiny.terminal and tiny.replaced_by_id is None
    assert determination("occ-tiny") == "Not identifiable"


def test_the_preview_counts_what_the_run_writes_and_samples_bare_detections(with_bare_detections):
    preview = run("small_size_filter", with_bare_detections, dry_run=True)
    assert Classification.objects.filter(detection__occurrence__key="bare-tiny").count() == 0
    sample = preview.result["preview"]["sample"]
    assert [(row["classification"] is None, row["to"]) for row in sample] == [
        (False, "Not identifiable"),
        (True, "Not identifiable"),
    ]
    bare = Detection.objects.get(occurrence__key="bare-tiny")
    assert sample[1]["detection"] == bare.pk
    job = run("small_size_filter", with_bare_detections)
    assert job.metrics["changed"] == preview.metrics["changed"] == 2


def test_reverting_the_filter_removes_the_label_of_a_bare_detection(with_bare_detections):
    before = snapshot()
    job = run("small_size_filter", with_bare_detections)
    summary = revert_job(job)
    assert summary == {"removed": 2, "restored": 1, "unreplaced": 0, "determinations_changed": 2}
    assert snapshot() == before
    assert determination("bare-tiny") is None


def test_the_filter_chunks_by_detection_and_ends_as_one_run(with_bare_detections):
    whole = run("small_size_filter", with_bare_detections, dry_run=True)
    chunked = run("small_size_filter", with_bare_detections, chunk_size=1)
    assert chunked.chunks.count() == 9
    for key in ("examined", "changed", "skipped", "transitions"):
        assert chunked.metrics[key] == whole.metrics[key]


def test_the_filter_on_one_occurrence_examines_its_detections_only(with_bare_detections):
    from taxopost.observations.models import Occurrence
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor
    from taxopost.postprocessing.running.operations import create_job

    occurrence = Occurrence.objects.get(key="bare-tiny")
    job = create_job("small_size_filter", Job.OCCURRENCE, occurrence.pk, {})
    EmbeddedExecutor().submit(job)
    assert (job.status, job.metrics["examined"], job.metrics["changed"]) == (Job.SUCCEEDED, 1, 1)
    assert determination("occ-tiny") == "Vanessa cardui"


def test_a_parquet_record_without_a_vector_is_a_detector_only_detection(platform, tmp_path):
    table = pa.table(
        {
            "capture_set": ["station-1", "station-1"],
            "image_path": ["img-6.jpg", "img-6.jpg"],
            "image_width": [1000, 1000],
            "image_height": [1000, 1000],
            "bbox": [[0.0, 0.0, 5.0, 5.0], [0.0, 0.0, 500.0, 500.0]],
            "occurrence": ["pq-tiny", "pq-large"],
            "algorithm": pa.array([None, None], pa.string()),
            "scores": pa.array([None, None], pa.list_(pa.float32())),
        }
    )
    pq.write_table(table, tmp_path / "detections.parquet")
    summary = import_predictions(tmp_path / "detections.parquet")
    assert summary.created["detections"] == 2 and not summary.created.get("classifications")
    job = run("small_size_filter", platform)
    assert job.metrics["changed"] == 2  # occ-tiny and pq-tiny
    assert determination("pq-tiny") == "Not identifiable"
    assert determination("pq-large") is None


@pytest.mark.shared_data
def test_megadetector_detections_are_judged_by_their_relative_boxes(db, shared_data):
    path = shared_data / "megadetector" / "format_example.json"
    ranks = ("kingdom", "phylum", "class", "order", "family", "species")
    import_predictions(path, capture_set="md", lineage_ranks=ranks)
    assert Detection.objects.filter(classifications__isnull=True).count() == 3
    areas = dict(Detection.objects.values_list("key", "relative_area"))
    assert areas["0,0.2762,0.1539,0.2825"] == pytest.approx(0.1539 * 0.2825)
    assert areas["0.1,0.2,0.3,0.4@0"] == pytest.approx(0.3 * 0.4)
    md = CaptureSet.objects.get(name="md")
    assert run("small_size_filter", md).metrics["changed"] == 0  # every box is above 0.0008
    job = run("small_size_filter", md, {"size_threshold": 0.05})  # the bear's box is 4.3% of its image
    assert (job.metrics["examined"], job.metrics["changed"], job.metrics["skipped"]["large enough"]) == (4, 1, 3)
    [label] = Classification.objects.filter(job=job)
    assert label.applied_to.taxon.name == "ursusamericanus"


def megadetector_file(tmp_path) -> Path:
    doc = {
        "info": {"format_version": "1.5", "detector": "MDV5A"},
        "detection_categories": {"1": "animal"},
        "images": [
            {
                "file": "night/0001.jpg",
                "detections": [
                    {"category": "1", "conf": 0.9, "bbox": [0.5, 0.5, 0.01, 0.01]},  # 1e-4 of the image
                    {"category": "1", "conf": 0.8, "bbox": [0.1, 0.1, 0.3, 0.2]},
                    {"category": "1", "conf": 0.7, "bbox": [0.95, 0.95, 0.2, 0.2]},  # overhangs: 0.05 x 0.05
                    {"category": "1", "conf": 0.6},  # no box
                ],
            }
        ],
    }
    path = tmp_path / "md.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_tiny_megadetector_detection_without_classification_becomes_not_identifiable(db, tmp_path):
    summary = import_predictions(megadetector_file(tmp_path), capture_set="night")
    assert summary.created["detections"] == 4 and not summary.created.get("classifications")
    job = run("small_size_filter", CaptureSet.objects.get(name="night"))
    assert job.metrics["changed"] == 1
    assert job.metrics["skipped"] == {"no bbox or image size": 1, "large enough": 2}
    [label] = Classification.objects.all()
    assert (label.detection.key, label.applied_to_id, label.taxon.name) == (
        "0.5,0.5,0.01,0.01",
        None,
        "Not identifiable",
    )
    assert label.details["relative_area"] == pytest.approx(1e-4)
    assert Detection.objects.get(key="0.95,0.95,0.2,0.2").relative_area == pytest.approx(0.0025)
    assert run("small_size_filter", CaptureSet.objects.get(name="night")).metrics["changed"] == 0


def test_importing_again_fills_the_relative_area_of_detections_stored_without_it(db, tmp_path):
    path = megadetector_file(tmp_path)
    import_predictions(path, capture_set="night")
    Detection.objects.update(relative_area=None)  # as stored before relative areas were
    summary = import_predictions(path, capture_set="night")
    assert not summary.created.get("detections")
    assert Detection.objects.get(key="0.5,0.5,0.01,0.01").relative_area == pytest.approx(1e-4)
    assert Detection.objects.filter(relative_area__isnull=True).count() == 1  # the one without a box
