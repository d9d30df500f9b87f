"""Re-running a task with another config: it replaces its earlier output instead of stacking on it.

The reference for every re-run is the same task run once, with the new config, on the state
before the earlier run: a re-tuned capture set must look as if the earlier config never ran.
"""

from __future__ import annotations

import pytest

from taxopost.errors import InputError
from taxopost.jobs.models import Job
from taxopost.jobs.replacements import replacement_notes
from taxopost.ml.models import Algorithm
from taxopost.observations.models import Classification, DeterminationChange
from taxopost.observations.provenance import classification_chains
from taxopost.postprocessing.running.revert import revert_job
from taxopost.taxa.models import Taxon

from .helpers import chain, determination, run, snapshot, terminal

pytestmark = pytest.mark.django_db

DEFAULT = {"thresholds": {"species": 0.8, "genus": 0.6, "family": 0.4}}
STRICT = {"thresholds": {"species": 0.95, "genus": 0.9, "family": 0.5}}  # every fixture row changes
LOOSE = {"thresholds": {"species": 0.45, "genus": 0.6, "family": 0.4}}  # four of them stay species


def _current() -> set[tuple]:
    """The current answers, each with its whole chain by content."""
    return {row for row, is_terminal, _ in snapshot() if is_terminal}


def _fresh(*steps: tuple[str, dict], capture_set) -> set[tuple]:
    """The current answers after ``steps`` run on the present state, which is then restored."""
    before = snapshot()
    jobs = [run(task, capture_set, config) for task, config in steps]
    answers = _current()
    for job in reversed(jobs):
        revert_job(job)
    assert snapshot() == before
    return answers


def _live_chains_are_single() -> None:
    """Outside replaced rows: one child at most, terminal exactly when childless, one answer per chain."""
    live = Classification.objects.filter(replaced_by=None)
    for clf in live:
        children = live.filter(applied_to=clf).count()
        assert children <= 1, clf.pk
        assert clf.terminal == (children == 0), clf.pk


def test_a_rollup_with_new_thresholds_starts_from_the_sources_and_replaces_the_earlier_outputs(platform):
    expected = _fresh(("rank_rollup", STRICT), capture_set=platform)
    first = run("rank_rollup", platform, DEFAULT)
    second = run("rank_rollup", platform, STRICT)
    assert first.metrics["changed"] == 5
    assert second.metrics["examined"] == 6  # the 5 sources of the earlier outputs, and the row it left
    assert second.metrics["replaced"] == {
        f"{first.pk}:{Algorithm.objects.get(task_type='rank_rollup', config__thresholds=DEFAULT['thresholds']).pk}": 5
    }
    assert _current() == expected
    earlier = Classification.objects.filter(job=first)
    assert earlier.count() == 5 and not earlier.filter(terminal=True).exists()
    assert set(earlier.values_list("replaced_by", flat=True)) == {second.pk}
    for clf in Classification.objects.filter(terminal=True).select_related("algorithm", "applied_to__algorithm"):
        rollups = [key for key in chain(clf) if key.startswith("rank_rollup")]
        assert len(rollups) <= 1 and (not rollups or clf.job_id == second.pk)
    assert determination("occ-vanessa") == "Nymphalidae" and determination("occ-confident") == "Danaus"
    _live_chains_are_single()


def test_a_rerun_that_leaves_a_source_as_it_is_makes_it_the_current_answer_again(platform):
    expected = _fresh(("rank_rollup", LOOSE), capture_set=platform)
    run("rank_rollup", platform, DEFAULT)
    second = run("rank_rollup", platform, LOOSE)
    assert second.metrics["restored"] == 4 and second.metrics["changed"] == 1
    assert _current() == expected
    [answer] = terminal("occ-vanessa")
    assert answer.applied_to_id is None and answer.taxon.name == "Vanessa atalanta"
    assert determination("occ-vanessa") == "Vanessa atalanta"
    assert "4 sources became the current answer again" in replacement_notes(second)[-1]
    _live_chains_are_single()


def test_reverting_a_rerun_is_refused_while_a_later_job_builds_on_the_sources_it_restored(platform):
    """The re-run made occ-vanessa's model output current again; a size filter on that occurrence
    then labelled it. Bringing the replaced roll-up back would give the chain two current answers."""
    from taxopost.observations.models import Occurrence
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor
    from taxopost.postprocessing.running.operations import create_job, submit_job

    run("rank_rollup", platform, DEFAULT)
    second = run("rank_rollup", platform, LOOSE)
    occurrence = Occurrence.objects.get(key="occ-vanessa").pk
    size_filter = create_job("small_size_filter", Job.OCCURRENCE, occurrence, {"size_threshold": 0.99})
    submit_job(size_filter, EmbeddedExecutor())
    size_filter.refresh_from_db()
    assert size_filter.metrics["changed"] == 1 and terminal("occ-vanessa")[0].applied_to.applied_to_id is None
    before = snapshot()
    with pytest.raises(InputError, match=f"job {size_filter.pk} built on what its re-run left as it was: revert"):
        revert_job(second)
    assert snapshot() == before  # nothing half-done
    revert_job(size_filter)
    revert_job(Job.objects.get(pk=second.pk))
    _live_chains_are_single()


def test_the_same_config_again_is_already_done(platform):
    run("rank_rollup", platform, DEFAULT)
    rows = Classification.objects.count()
    again = run("rank_rollup", platform, DEFAULT)
    assert again.metrics["examined"] == 1  # only the chain the roll-up left as it was
    assert again.metrics["changed"] == again.metrics["restored"] == 0 and not again.metrics["replaced"]
    assert Classification.objects.count() == rows and not Classification.objects.exclude(replaced_by=None).exists()


def test_reverting_the_new_run_restores_the_earlier_outputs_and_chains_stay_walkable(platform):
    original = snapshot()
    first = run("rank_rollup", platform, DEFAULT)
    after_first = snapshot()
    second = run("rank_rollup", platform, STRICT)
    # every chain, current or replaced, walks down to the model's own output
    for steps in classification_chains(Classification.objects.values_list("id", flat=True)).values():
        assert steps[-1].applied_to_id is None and steps[-1].algorithm.key == "moths-v1"
    with pytest.raises(InputError, match=f"job {second.pk} replaced its output .*: revert that first"):
        revert_job(first)
    summary = revert_job(second)
    assert summary["removed"] == 6 and summary["unreplaced"] == 5
    assert snapshot() == after_first
    assert not Classification.objects.exclude(replaced_by=None).exists()
    assert determination("occ-vanessa") == "Vanessa"
    revert_job(Job.objects.get(pk=first.pk))
    assert snapshot() == original


def test_a_rerun_that_crashed_resumes_to_the_state_of_an_uninterrupted_one(platform):
    from datetime import timedelta

    from django.utils import timezone

    from taxopost.jobs.models import JobChunk
    from taxopost.postprocessing.running.chunk import DONE, _begin, run_chunk
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor
    from taxopost.postprocessing.running.lifecycle import claim, reap_stale_jobs
    from taxopost.postprocessing.running.operations import create_job, resume_job

    pipeline = [("rank_rollup", DEFAULT), ("small_size_filter", {"size_threshold": 0.2})]
    for task, config in pipeline:
        run(task, platform, config)
    uninterrupted = run("rank_rollup", platform, LOOSE, chunk_size=2)
    expected = snapshot()
    revert_job(uninterrupted)

    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, LOOSE, chunk_size=2)
    assert claim(job.pk, "embedded").fresh
    first, second, *_ = JobChunk.objects.filter(job=job).order_by("index")
    assert run_chunk(first.pk).state == DONE
    assert isinstance(_begin(second.pk, "dead-host:1"), tuple)  # begun, its writes never committed
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    [reaped] = reap_stale_jobs()
    assert reaped.status == Job.FAILED
    assert Classification.objects.filter(replaced_by=job).exists()  # the first chunk's replacements only

    resumed = resume_job(Job.objects.get(pk=job.pk), EmbeddedExecutor())
    assert resumed.status == Job.SUCCEEDED, resumed.error
    assert snapshot() == expected
    same = ("examined", "changed", "restored", "transitions", "determinations_changed")
    assert {k: resumed.metrics[k] for k in same} == {k: uninterrupted.metrics[k] for k in same}
    assert sum(resumed.metrics["replaced"].values()) == sum(uninterrupted.metrics["replaced"].values()) > 0
    assert sum(resumed.metrics["replaced_later"].values()) == sum(uninterrupted.metrics["replaced_later"].values())
    _live_chains_are_single()


def test_stack_applies_the_new_config_to_the_current_answers_and_keeps_the_earlier_outputs(platform):
    first = run("rank_rollup", platform, DEFAULT)
    stacked = run("rank_rollup", platform, STRICT, stack=True)
    assert Job.objects.get(pk=stacked.pk).stack
    # the roll-up's outputs carry no vector: only the row it left is rolled up, on top of the current answers
    assert stacked.metrics["examined"] == 1 and stacked.metrics["changed"] == 1
    assert not stacked.metrics["replaced"] and not Classification.objects.exclude(replaced_by=None).exists()
    assert Classification.objects.filter(job=first, terminal=True).count() == 5


def test_a_size_filter_after_the_rollup_is_replaced_with_it_and_runs_again_on_the_new_outputs(platform):
    """Decided: outputs of later tasks built on a replaced output are replaced too (computed from
    what the old config said), named in the preview; running that task again applies it."""
    pipeline = [("class_masking", {"taxa_list": "regional"}), ("rank_rollup", DEFAULT), ("small_size_filter", {})]
    expected = _fresh(pipeline[0], ("rank_rollup", STRICT), pipeline[2], capture_set=platform)
    masking, rollup, size_filter = (run(task, platform, config) for task, config in pipeline)
    after_pipeline = snapshot()
    assert size_filter.metrics["changed"] == 1 and determination("occ-tiny") == "Not identifiable"

    preview = run("rank_rollup", platform, STRICT, dry_run=True)
    notes = replacement_notes(preview)
    assert notes[0].startswith(f"{rollup.metrics['changed']} outputs of job {rollup.pk} (species 0.8, genus 0.6")
    assert notes[0].endswith("are replaced")
    assert notes[1] == (
        f"1 output of job {size_filter.pk} (small-size filter: < 0.0008 of the image) built on them is replaced "
        "too: run small_size_filter again after this job to apply it to the new outputs"
    )
    assert snapshot() == after_pipeline

    rerun = run("rank_rollup", platform, STRICT)
    [tiny] = terminal("occ-tiny")
    assert tiny.job_id == rerun.pk and tiny.taxon.name == "Vanessa"  # the old filter's answer is replaced too
    with pytest.raises(InputError, match=f"job {rerun.pk} replaced its output"):
        revert_job(size_filter)
    refilter = run("small_size_filter", platform, {})
    assert refilter.metrics["changed"] == 1 and not refilter.metrics["replaced"]
    assert _current() == expected
    assert [Algorithm.objects.get(key=key).task_type for key in chain(terminal("occ-tiny")[0])] == [
        "small_size_filter", "rank_rollup", "class_masking", "classification",
    ]  # fmt: skip
    _live_chains_are_single()

    revert_job(refilter)
    revert_job(rerun)
    assert snapshot() == after_pipeline
    for job in (size_filter, rollup, masking):
        revert_job(Job.objects.get(pk=job.pk))


def test_masking_to_another_list_replaces_the_earlier_masking_and_what_was_built_on_it(platform):
    from taxopost.taxa.operations import import_taxa_list

    import_taxa_list("vanessa only", Taxon.objects.filter(name="Vanessa").values_list("id", flat=True))
    expected = _fresh(("class_masking", {"taxa_list": "vanessa only"}), capture_set=platform)
    first = run("class_masking", platform, {"taxa_list": "regional"})
    rollup = run("rank_rollup", platform, DEFAULT)
    second = run("class_masking", platform, {"taxa_list": "vanessa only"})
    assert second.metrics["examined"] == 6
    assert sum(second.metrics["replaced"].values()) == first.metrics["changed"] == 6
    assert sum(second.metrics["replaced_later"].values()) == rollup.metrics["changed"] > 0
    assert _current() == expected
    for clf in Classification.objects.filter(terminal=True):
        assert clf.algorithm.config["taxa_list"] == "vanessa only"
    _live_chains_are_single()


SCENARIOS = {
    "roll-up": [("rank_rollup", DEFAULT)],
    "masking": [("class_masking", {"taxa_list": "regional"})],
    "size filter": [("small_size_filter", {"size_threshold": 0.2})],
    "roll-up re-tuned": [("rank_rollup", DEFAULT), ("rank_rollup", STRICT)],
    "roll-up re-tuned, sources restored": [("rank_rollup", DEFAULT), ("rank_rollup", LOOSE)],
    "roll-up re-tuned under a size filter": [
        ("class_masking", {"taxa_list": "regional"}),
        ("rank_rollup", DEFAULT),
        ("small_size_filter", {}),
        ("rank_rollup", STRICT),
    ],
    "masking to another list under a roll-up": [
        ("class_masking", {"taxa_list": "regional"}),
        ("rank_rollup", DEFAULT),
        ("class_masking", {"taxa_list": "vanessa only"}),
    ],
}


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_a_dry_run_estimates_what_the_real_run_changes_determinations_included(platform, steps):
    from taxopost.taxa.operations import import_taxa_list

    import_taxa_list("vanessa only", Taxon.objects.filter(name="Vanessa").values_list("id", flat=True))
    *before, (task, config) = steps
    for earlier_task, earlier_config in before:
        run(earlier_task, platform, earlier_config)
    preview = run(task, platform, config, dry_run=True)
    history = DeterminationChange.objects.count()
    real = run(task, platform, config)
    keys = ("examined", "changed", "restored", "superseded", "replaced", "replaced_later", "transitions", "to_taxa")
    assert {key: preview.metrics[key] for key in keys} == {key: real.metrics[key] for key in keys}
    assert real.metrics["determinations_changed"] == DeterminationChange.objects.count() - history > 0
    assert preview.metrics["determinations_changed"] == real.metrics["determinations_changed"]


def test_a_dry_run_does_not_count_an_identified_occurrence(platform):
    from django.utils import timezone

    from taxopost.observations.determinations import recompute_determinations
    from taxopost.observations.models import Identification, Occurrence

    occurrence = Occurrence.objects.get(key="occ-vanessa")
    Identification.objects.create(
        occurrence=occurrence, taxon=Taxon.objects.get(name="Vanessa cardui"), who="expert", created_at=timezone.now()
    )
    recompute_determinations([occurrence.pk])
    preview = run("rank_rollup", platform, DEFAULT, dry_run=True)
    real = run("rank_rollup", platform, DEFAULT)
    assert real.metrics["changed"] == 5
    assert preview.metrics["determinations_changed"] == real.metrics["determinations_changed"] == 4


def test_the_cli_dry_run_says_what_it_replaces_and_stack_keeps_it(platform, capsys):
    from taxopost.cli import main

    first = run("rank_rollup", platform, DEFAULT)
    args = ["run", "rank_rollup", "--capture-set", platform.name, "--threshold", "species=0.95", "--threshold",
            "genus=0.9", "--threshold", "family=0.5"]  # fmt: skip
    assert main([*args, "--dry-run"]) == 0
    printed = " ".join(capsys.readouterr().out.replace("│", " ").split())  # the table's cells, unwrapped
    assert f"5 outputs of job {first.pk} (species 0.8, genus 0.6, family 0.4; lineage) are replaced" in printed
    assert "(estimated for a real run)" in printed
    assert main([*args, "--stack"]) == 0
    stacked = Job.objects.get(dry_run=False, stack=True)
    assert stacked.metrics["examined"] == 1 and not stacked.metrics["replaced"]


def test_a_rerun_chunk_costs_the_same_queries_for_10_or_1000_classifications(db, tmp_path):
    from taxopost.observations.models import CaptureSet

    from .conftest import ROWS
    from .test_postprocessing import _chunk_queries, _load_many

    counts = []
    for n in (2, 10, 1000):  # the first writes the new config's algorithm once
        _load_many(tmp_path, f"set-{n}", n, ROWS)
        capture_set = CaptureSet.objects.get(name=f"set-{n}")
        run("rank_rollup", capture_set, DEFAULT)
        run("small_size_filter", capture_set, {"size_threshold": 0.5})  # a later task on every output
        counts.append(_chunk_queries("rank_rollup", capture_set, STRICT, n))
        replaced = Classification.objects.filter(
            replaced_by__isnull=False, detection__source_image__capture_sets=capture_set
        )
        assert replaced.count() == 2 * n
    assert counts[1] == counts[2]


@pytest.mark.parametrize("method", ["mean", "geometric"])
def test_a_dry_run_of_consensus_estimates_its_determinations_on_a_first_run_and_a_rerun(platform, tmp_path, method):
    from taxopost.observations.models import CaptureSet
    from taxopost.observations.predictions import import_predictions

    from .conftest import ROWS, write_predictions

    # three occurrences of two detections each, on other images
    rows = [(f"pair-{i // 2}", f"pair-{i}.jpg", bbox, scores) for i, (_, _, bbox, scores) in enumerate(ROWS)]
    import_predictions(write_predictions(tmp_path / "pairs.jsonl", rows, capture_set="pairs"))
    pairs = CaptureSet.objects.get(name="pairs")
    if method == "geometric":  # a re-run: the mean's outputs are replaced
        run("occurrence_consensus", pairs, {"method": "mean"})
    preview = run("occurrence_consensus", pairs, {"method": method}, dry_run=True)
    real = run("occurrence_consensus", pairs, {"method": method})
    assert real.metrics["changed"] == 6 and bool(real.metrics["replaced"]) == (method == "geometric")
    for key in ("changed", "replaced", "transitions", "determinations_changed"):
        assert preview.metrics[key] == real.metrics[key], key
    assert real.metrics["determinations_changed"] > 0
