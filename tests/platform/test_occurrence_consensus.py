"""Occurrence consensus on the database: one combined vector for every detection of an occurrence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taxopost.cli import main
from taxopost.errors import InputError
from taxopost.jobs.models import Job
from taxopost.ml.models import Algorithm
from taxopost.ml.operations import get_or_create_algorithm, import_category_map
from taxopost.observations.evaluation import evaluate_capture_set
from taxopost.observations.identifications import import_identifications
from taxopost.observations.models import CaptureSet, Classification, Detection, Occurrence
from taxopost.observations.predictions import import_predictions
from taxopost.observations.vectors import stack
from taxopost.postprocessing.running.embedded import EmbeddedExecutor
from taxopost.postprocessing.running.operations import create_job, submit_job
from taxopost.postprocessing.running.revert import revert_job
from taxopost.postprocessing.tasks.occurrence_consensus import OTHERS_WITHOUT_VECTOR
from taxopost.tasks.occurrence_consensus import OccurrenceConsensusSpec
from taxopost.taxa.models import Taxon
from taxopost.taxa.operations import import_taxa_list, import_taxonomy

from .conftest import LABELS, taxonomy, vector
from .helpers import chain, determination, run, snapshot, terminal

pytestmark = pytest.mark.django_db

KEY = OccurrenceConsensusSpec.key
# A moth on the sheet for three frames, each unsure between two Catocala (one frame prefers
# relicta), and a confident individual seen once. Images are 1000 x 1000 pixels.
TRACK = [
    ("img-1.jpg", [0, 0, 100, 100], vector(Catocala_ilia=0.55, Catocala_relicta=0.3)),
    ("img-2.jpg", [0, 0, 200, 100], vector(Catocala_ilia=0.55, Catocala_relicta=0.3)),
    ("img-3.jpg", None, vector(Catocala_ilia=0.3, Catocala_relicta=0.5)),
]
SINGLE = ("img-1.jpg", [500, 500, 900, 900], vector(Danaus_plexippus=0.93))


def _record(image, bbox, scores, occurrence, algorithm="moths-v1"):
    record = {
        "capture_set": "station-1",
        "image": {"path": image, "width": 1000, "height": 1000},
        "occurrence": occurrence,
        "algorithm": algorithm,
        "scores": scores,
    }
    if bbox is None:
        record["detection"] = "whole"
    else:
        record["bbox"] = bbox
    return record


def _import(tmp_path, records, name="predictions.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    import_predictions(path)


@pytest.fixture
def survey(db, tmp_path):
    import_taxonomy(taxonomy())
    category_map, _ = import_category_map(LABELS)
    get_or_create_algorithm("moths-v1", category_map=category_map)
    _import(tmp_path, [*(_record(*row, "occ-track") for row in TRACK), _record(*SINGLE, "occ-single")])
    regional = Taxon.objects.filter(name__in=["Catocala", "Danaus"]).values_list("id", flat=True)
    import_taxa_list("regional", regional)
    return CaptureSet.objects.get(name="station-1")


def _vectors(classifications) -> np.ndarray:
    return stack([c.scores for c in classifications], len(LABELS))


def test_every_detection_of_an_occurrence_gets_the_combined_vector(survey):
    sources = {c.pk: c for c in Classification.objects.filter(detection__occurrence__key="occ-track")}
    assert [c.taxon.name for c in sources.values()].count("Catocala ilia") == 2  # one frame says relicta
    job = run(KEY, survey)
    written = terminal("occ-track")
    assert len(written) == 3 and {c.applied_to_id for c in written} == set(sources)
    expected = _vectors(sources.values()).astype(np.float64).mean(axis=0)
    for clf in written:
        assert clf.algorithm.task_type == KEY and clf.job_id == job.pk and clf.category_map_id is not None
        np.testing.assert_allclose(_vectors([clf])[0], expected, rtol=1e-6)
        assert clf.taxon.name == "Catocala ilia" and clf.score == pytest.approx(expected.max(), rel=1e-6)
        assert not clf.applied_to.terminal
        assert clf.details["occurrence"] == clf.detection.occurrence_id
        assert sorted(clf.details["members"]) == sorted(c.detection_id for c in sources.values())
        assert sorted(clf.details["sources"]) == sorted(sources)
        assert clf.details["method"] == "mean" and clf.details["mass"] == pytest.approx(1.0)
    assert job.metrics["changed"] == 3 and job.metrics["examined"] == 4
    assert job.metrics["skipped"] == {"occurrence with one detection": 1}
    assert job.metrics["transitions"] == {"species -> species": 3}
    assert determination("occ-track") == "Catocala ilia"
    [single] = terminal("occ-single")
    assert single.algorithm.key == "moths-v1"  # passed through


LEFT_WHOLE = "refused: a detection of the occurrence changed while the chunk ran (run the job again)"


def _mask_the_relicta_frame(survey) -> Job:
    """A masking job that changes one frame of occ-track: the one preferring relicta."""
    import_taxa_list(
        "ilia-only", Taxon.objects.filter(name__in=["Catocala ilia", "Danaus"]).values_list("id", flat=True)
    )
    return run("class_masking", survey, {"taxa_list": "ilia-only", "winner_changes_only": True})


def _reverted_meanwhile(monkeypatch, job: Job, step: str) -> None:
    """The consensus task's ``step`` ("chunk_inputs": before the read, "process": after the
    compute) reverts ``job`` on its way, as a person might while the chunk runs."""
    from taxopost.postprocessing.tasks.occurrence_consensus import OccurrenceConsensusTask

    original = getattr(OccurrenceConsensusTask, step)

    def with_a_revert(self, ids):
        if step == "chunk_inputs":
            revert_job(Job.objects.get(pk=job.pk))
        result = original(self, ids)
        if step == "process":
            revert_job(Job.objects.get(pk=job.pk))
        return result

    monkeypatch.setattr(OccurrenceConsensusTask, step, with_a_revert)


def test_an_occurrence_whose_member_changed_while_the_chunk_ran_is_left_whole(survey, monkeypatch):
    """All of an occurrence or none: a member's source reverted between the chunk's read and its
    commit (its masking job) leaves every member as it is, not two of three combined with it."""
    mask = _mask_the_relicta_frame(survey)
    assert mask.metrics["changed"] == 1  # the relicta frame only
    before = snapshot()
    revert_job(mask)
    raw = snapshot()
    mask = run("class_masking", survey, {"taxa_list": "ilia-only", "winner_changes_only": True})
    assert snapshot() == before
    with monkeypatch.context() as patch:
        _reverted_meanwhile(patch, mask, "process")
        job = run(KEY, survey)
    assert {c.algorithm.key for c in terminal("occ-track")} == {"moths-v1"}  # all three as they were
    assert snapshot() == raw
    assert job.metrics["changed"] == 0 and job.metrics["superseded"] == 1
    assert job.metrics["skipped"][LEFT_WHOLE] == 2
    assert run(KEY, survey).metrics["changed"] == 3  # a re-run combines it as it is now


def test_an_occurrence_that_lost_a_member_since_the_plan_is_left_whole(survey, monkeypatch):
    """A member of the plan gone when the chunk reads (its masking reverted after the plan): the
    occurrence is not combined without it, and a re-run combines all three."""
    mask = _mask_the_relicta_frame(survey)
    with monkeypatch.context() as patch:
        _reverted_meanwhile(patch, mask, "chunk_inputs")
        job = run(KEY, survey)
    assert {c.algorithm.key for c in terminal("occ-track")} == {"moths-v1"}
    assert job.metrics["changed"] == 0 and job.metrics["superseded"] == 1
    assert job.metrics["skipped"][LEFT_WHOLE] == 2
    assert run(KEY, survey).metrics["changed"] == 3


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_occurrence_left_whole_on_a_rerun_keeps_its_earlier_outputs(survey, monkeypatch, dry_run):
    """Left as it is means as it is: the members' outputs of an earlier consensus are neither
    replaced nor their sources restored (nor counted as such in a preview)."""
    track = Occurrence.objects.get(key="occ-track")
    third = Detection.objects.filter(occurrence=track).order_by("id").last()
    Detection.objects.filter(pk=third.pk).update(occurrence=Occurrence.objects.create(project=track.project, key="x"))
    first = run(KEY, survey)  # combines the first two frames
    Detection.objects.filter(pk=third.pk).update(occurrence=track)  # the third frame joins again
    _reverted_meanwhile(monkeypatch, _mask_the_relicta_frame(survey), "process")
    job = run(KEY, survey, {"method": "geometric"}, dry_run=dry_run)
    assert job.metrics["restored"] == 0 and job.metrics["changed"] == 0
    assert job.metrics["skipped"][LEFT_WHOLE] == 2
    assert {c.job_id for c in terminal("occ-track")} == {first.pk, None}  # the earlier outputs, and the raw third


def test_the_geometric_method_adds_up_agreeing_frames(survey):
    sources = list(Classification.objects.filter(detection__occurrence__key="occ-track").order_by("id"))
    run(KEY, survey, {"method": "geometric"})
    [clf, *_] = terminal("occ-track")
    logs = np.log(np.maximum(_vectors(sources).astype(np.float64), 1e-4)).sum(axis=0)
    expected = np.exp(logs - logs.max()) / np.exp(logs - logs.max()).sum()
    np.testing.assert_allclose(_vectors([clf])[0], expected, rtol=1e-5)
    assert clf.score > 0.55  # more sure than any one frame


def test_weighting_by_area_gives_larger_boxes_more_say(survey):
    sources = list(Classification.objects.filter(detection__occurrence__key="occ-track").order_by("id"))
    run(KEY, survey, {"weighting": "area"})
    [clf, *_] = terminal("occ-track")
    areas = np.array([100 * 100, 200 * 100, 1000 * 1000], dtype=np.float64)  # no box: the whole image
    expected = (areas[:, None] * _vectors(sources)).sum(axis=0) / areas.sum()
    np.testing.assert_allclose(_vectors([clf])[0], expected, rtol=1e-6)
    assert clf.taxon.name == "Catocala relicta"  # the whole-image frame dominates


def test_weighting_by_area_gives_a_box_of_area_zero_no_say(db, tmp_path):
    """A box whose corners coincide on one axis is a box (its area 0), not a missing one."""
    import_taxonomy(taxonomy())
    category_map, _ = import_category_map(LABELS)
    get_or_create_algorithm("moths-v1", category_map=category_map)
    flat = vector(Catocala_ilia=0.3, Catocala_relicta=0.6)
    _import(tmp_path, [_record("img-1.jpg", [10, 10, 10, 60], flat, "occ"), _record(*TRACK[1], "occ")])
    job = run(KEY, CaptureSet.objects.get(name="station-1"), {"weighting": "area"})
    assert job.metrics["changed"] == 2 and not job.metrics["skipped"]
    [clf, *_] = terminal("occ")
    np.testing.assert_allclose(_vectors([clf])[0], np.asarray(TRACK[1][2], dtype=np.float32), rtol=1e-6)


def test_weighting_by_detector_confidence_gives_surer_boxes_more_say(db, tmp_path):
    import_taxonomy(taxonomy())
    category_map, _ = import_category_map(LABELS)
    get_or_create_algorithm("moths-v1", category_map=category_map)
    confidences = [0.9, 0.8, 0.1]
    records = [
        _record(*row, "occ-track") | {"detection_confidence": c} for row, c in zip(TRACK, confidences, strict=True)
    ]
    pair = [("img-4.jpg", *TRACK[0][1:]), ("img-5.jpg", *TRACK[1][1:])]
    seen_once = [_record(*pair[0], "occ-pair"), _record(*pair[1], "occ-pair") | {"detection_confidence": 0.5}]
    _import(tmp_path, [*records, *seen_once])
    assert sorted(Detection.objects.exclude(confidence=None).values_list("confidence", flat=True)) == [
        pytest.approx(c) for c in (0.1, 0.5, 0.8, 0.9)
    ]
    sources = list(Classification.objects.filter(detection__occurrence__key="occ-track").order_by("id"))
    job = run(KEY, CaptureSet.objects.get(name="station-1"), {"weighting": "detector_confidence"})
    [clf, *_] = terminal("occ-track")
    weights = np.array(confidences)
    expected = (weights[:, None] * _vectors(sources)).sum(axis=0) / weights.sum()
    np.testing.assert_allclose(_vectors([clf])[0], expected, rtol=1e-6)
    assert clf.taxon.name == "Catocala ilia"  # the unsure whole-image frame barely counts
    assert clf.details["weighting"] == "detector_confidence"
    # An occurrence with a detection of unknown confidence is left as it is, and said so.
    assert {c.algorithm.key for c in terminal("occ-pair")} == {"moths-v1"}
    assert job.metrics["skipped"] == {
        "refused: a detection of the occurrence has no detector confidence to weigh by": 2
    }


def test_masking_before_and_rollup_after_chain_and_decide_once_per_occurrence(survey):
    run("class_masking", survey, {"taxa_list": "regional"})
    run(KEY, survey)
    job = run("rank_rollup", survey, {"thresholds": {"species": 0.9, "genus": 0.6}})
    track = terminal("occ-track")
    assert {(c.taxon.name, round(c.score, 6)) for c in track} == {("Catocala", round(track[0].score, 6))}
    for clf in track:
        keys = chain(clf)
        assert keys[0] == job_algorithm(job) and keys[1].startswith(KEY) and keys[-1] == "moths-v1"
    assert determination("occ-track") == "Catocala"


def job_algorithm(job: Job) -> str:
    return Classification.objects.filter(job=job).values_list("algorithm__key", flat=True).first()


def test_rerunning_changes_nothing_and_revert_restores_everything(survey):
    before = snapshot()
    first = run(KEY, survey)
    after = snapshot()
    again = run(KEY, survey)
    assert again.metrics["changed"] == 0 and snapshot() == after
    assert again.metrics["skipped"] == {"occurrence with one detection": 1}
    revert_job(first)
    assert snapshot() == before
    assert determination("occ-track") == "Catocala ilia"


def test_a_dry_run_counts_and_writes_nothing(survey):
    before = snapshot()
    job = run(KEY, survey, dry_run=True)
    assert job.metrics["changed"] == 3 and snapshot() == before
    assert not Algorithm.objects.filter(task_type=KEY).exists()


def test_min_detections_leaves_shorter_occurrences_alone(survey):
    job = run(KEY, survey, {"min_detections": 4})
    assert job.metrics["changed"] == 0
    assert job.metrics["skipped"] == {"fewer detections than min_detections": 3, "occurrence with one detection": 1}


def test_an_occurrence_with_two_category_maps_is_refused_with_the_reason(survey, tmp_path):
    other, _ = import_category_map(LABELS[:7])  # another model's label space
    get_or_create_algorithm("moths-v2", category_map=other)
    scores = [0.1] * 6 + [0.4]
    _import(tmp_path, [_record("img-4.jpg", [0, 0, 50, 50], scores, "occ-track", "moths-v2")], "v2.jsonl")
    job = run(KEY, survey)
    assert job.metrics["changed"] == 0
    reason = "refused: the occurrence's detections use different category maps (name a source_algorithm)"
    assert job.metrics["skipped"] == {reason: 4, "occurrence with one detection": 1}
    chosen = run(KEY, survey, {"source_algorithm": "moths-v1"})
    assert chosen.metrics["changed"] == 3  # naming the model combines its detections


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"method": "median"}, r"config\.method='median'"),
        ({"min_detections": 1}, r"config\.min_detections=1"),
        ({"weighting": "confidence"}, r"config\.weighting='confidence'"),
        (
            {"source_algorithm": "nope"},
            r"config\.source_algorithm='nope': no algorithm with a category map has this key",
        ),
    ],
)
def test_a_bad_config_is_refused_naming_the_field_and_nothing_is_recorded(survey, config, match):
    with pytest.raises(InputError, match=match):
        create_job(KEY, Job.CAPTURE_SET, survey.pk, config)
    assert not Job.objects.exists()


def test_a_source_algorithm_without_vectors_is_refused_where_it_combined_nothing(survey):
    """A roll-up's output holds no vectors: named as the source, the job examined nothing and said nothing."""
    rollup = run("rank_rollup", survey, {"thresholds": {"species": 0.99, "genus": 0.5}})
    key = Classification.objects.filter(job=rollup).values_list("algorithm__key", flat=True).first()
    assert key is not None
    with pytest.raises(InputError, match=rf"config\.source_algorithm='{key}': no algorithm with a category map"):
        create_job(KEY, Job.CAPTURE_SET, survey.pk, {"source_algorithm": key})
    assert Job.objects.filter(task=KEY).count() == 0


def test_a_run_over_the_rest_of_an_occurrence_combines_it_again_whole(survey):
    """A capture set holding two of a track's three images is combined first; the same config on
    the whole station then combines all three, replacing those two outputs, where it used to leave
    the third frame alone (counted as an occurrence of one detection) and the track two answers."""
    frames = list(Detection.objects.filter(occurrence__key="occ-track").order_by("id"))
    part = CaptureSet.objects.create(name="part", project=survey.project)
    part.images.set([d.source_image for d in frames[:2]])
    first = run(KEY, part)
    assert first.metrics["changed"] == 2
    whole = run(KEY, survey)
    assert whole.metrics["changed"] == 3 and whole.metrics["skipped"] == {"occurrence with one detection": 1}
    written = terminal("occ-track")
    assert len(written) == 3 and {c.job_id for c in written} == {whole.pk}
    assert {tuple(sorted(c.details["members"])) for c in written} == {tuple(d.pk for d in frames)}
    assert Classification.objects.filter(job=first, replaced_by=whole).count() == 2
    assert run(KEY, survey).metrics["changed"] == 0  # done whole now: the same config again changes nothing
    revert_job(Job.objects.get(pk=whole.pk))
    assert sorted(str(c.job_id) for c in terminal("occ-track")) == sorted([str(first.pk)] * 2 + ["None"])


def test_runs_over_overlapping_parts_of_an_occurrence_are_combined_again_whole(survey):
    """Frames 1-2, then frames 2-3: every frame holds this config's output, over two member sets;
    the run over the station combines the three, where it saw every chain done and left two answers."""
    frames = list(Detection.objects.filter(occurrence__key="occ-track").order_by("id"))
    for name, part in (("first two", frames[:2]), ("last two", frames[1:])):
        capture_set = CaptureSet.objects.create(name=name, project=survey.project)
        capture_set.images.set([d.source_image for d in part])
        assert run(KEY, capture_set).metrics["changed"] == 2
    assert len({tuple(sorted(c.details["members"])) for c in terminal("occ-track")}) == 2
    whole = run(KEY, survey)
    assert whole.metrics["changed"] == 3
    assert {tuple(sorted(c.details["members"])) for c in terminal("occ-track")} == {tuple(d.pk for d in frames)}
    assert run(KEY, survey).metrics["changed"] == 0


def test_an_occurrence_whose_other_detections_hold_no_vector_is_not_called_small(survey):
    """After a roll-up of one frame, the track has two frames with vectors, not one or two
    detections: refused for min_detections 3, it says why instead of "fewer detections"."""
    rollup = run("rank_rollup", survey, {"thresholds": {"species": 0.54, "genus": 0.5}})
    assert rollup.metrics["changed"] == 1  # the frame preferring relicta at 0.5
    job = run(KEY, survey, {"min_detections": 3})
    assert job.metrics["changed"] == 0
    assert job.metrics["skipped"] == {OTHERS_WITHOUT_VECTOR: 2, "occurrence with one detection": 1}
    assert run(KEY, survey).metrics["changed"] == 2  # the two frames with vectors, combined


def test_a_rerun_changes_nothing_where_a_detection_holds_what_the_task_never_combines(survey, tmp_path):
    """A roll-up's output (no vector) on one frame, another model's output outside the source
    algorithm's chain on another: the occurrence was done, not partly done, and a re-run with the
    same config combined it again whole every time, replacing its outputs with their copies."""
    assert run("rank_rollup", survey, {"thresholds": {"species": 0.54, "genus": 0.5}}).metrics["changed"] == 1
    assert run(KEY, survey).metrics["changed"] == 2
    after = snapshot()
    again = run(KEY, survey)
    assert again.metrics["changed"] == 0 and snapshot() == after
    other, _ = import_category_map(LABELS[:7])
    get_or_create_algorithm("moths-v2", category_map=other)
    _import(tmp_path, [_record("img-4.jpg", [0, 0, 50, 50], [0.1] * 6 + [0.4], "occ-track", "moths-v2")], "v2.jsonl")
    chosen = {"source_algorithm": "moths-v1"}
    assert run(KEY, survey, chosen).metrics["changed"] == 2  # another config: its outputs replace the first's
    after = snapshot()
    again = run(KEY, survey, chosen)
    assert again.metrics["changed"] == 0 and snapshot() == after


def test_an_occurrence_scope_combines_that_occurrence(survey):
    occurrence = Occurrence.objects.get(key="occ-track")
    job = submit_job(create_job(KEY, Job.OCCURRENCE, occurrence.pk, {}), EmbeddedExecutor())
    assert job.status == Job.SUCCEEDED and job.metrics["changed"] == 3


def test_without_consensus_the_highest_score_decides_whatever_its_rank(db, tmp_path):
    """The determination rule across ranks (docs/platform.md, "Determinations"): score, not rank."""
    import_taxonomy(taxonomy())
    category_map, _ = import_category_map(LABELS)
    get_or_create_algorithm("moths-v1", category_map=category_map)
    rows = [
        ("img-1.jpg", [0, 0, 100, 100], vector(Vanessa_atalanta=0.5, Vanessa_cardui=0.2, Vanessa_itea=0.1), "occ-a"),
        ("img-2.jpg", [0, 0, 100, 100], vector(Noctua_pronuba=0.5, Danaus_plexippus=0.3), "occ-a"),
        ("img-1.jpg", [200, 0, 300, 100], vector(Vanessa_atalanta=0.5, Vanessa_cardui=0.2, Vanessa_itea=0.1), "occ-b"),
        ("img-2.jpg", [200, 0, 300, 100], vector(Noctua_pronuba=0.85), "occ-b"),
    ]
    _import(tmp_path, [_record(image, bbox, scores, occurrence) for image, bbox, scores, occurrence in rows])
    run("rank_rollup", CaptureSet.objects.get(name="station-1"), {"thresholds": {"species": 0.8, "genus": 0.6}})
    # a genus at 0.8 (rolled up) beats a species at 0.5 (no rank cleared its threshold) ...
    assert determination("occ-a") == "Vanessa"
    # ... and loses to a species at 0.85
    assert determination("occ-b") == "Noctua pronuba"


def test_taxopost_run_takes_the_consensus_options(survey, capsys):
    args = ["run", KEY, "--capture-set", survey.name]
    assert main([*args, "--method", "geometric", "--min-detections", "3", "--weighting", "area"]) == 0
    job = Job.objects.get()
    assert job.config == {"method": "geometric", "weighting": "area", "min_detections": 3, "source_algorithm": None}
    assert job.metrics["changed"] == 3
    assert main([*args, "--method", "median"]) == 2
    assert "method='median'" in capsys.readouterr().err


def test_a_capture_set_evaluation_runs_consensus_pipelines_and_counts_occurrences(survey, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("occurrence,taxon\nocc-track,Catocala ilia\nocc-single,Danaus plexippus\n")
    import_identifications(path)
    steps = [{"task": KEY, "method": "mean"}, {"task": "rank_rollup"}]
    evaluation = evaluate_capture_set(survey, [{"name": "model", "steps": []}, {"name": "consensus", "steps": steps}])
    model, combined = evaluation.pipelines
    assert model.metrics.n == 4 and model.occurrences.n == 2
    assert model.metrics.accuracy == 0.75  # the relicta frame is wrong ...
    assert model.occurrences.accuracy == 1.0  # ... but its occurrence takes its best frame, ilia
    assert combined.occurrences.n == 2 and combined.metrics.accuracy == 1.0
