"""The post-processing framework and its three tasks on the database."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from taxopost.errors import InputError
from taxopost.jobs.models import Job
from taxopost.ml.models import Algorithm
from taxopost.observations.models import Classification, DeterminationChange, Identification, Occurrence
from taxopost.postprocessing.registry import all_tasks, get_task
from taxopost.postprocessing.running.operations import create_job
from taxopost.postprocessing.running.revert import revert_job
from taxopost.taxa.models import Taxon

from .helpers import chain, determination, run, snapshot, terminal

pytestmark = pytest.mark.django_db


def test_registry_lists_the_tasks():
    assert [t.key for t in all_tasks()] == ["class_masking", "occurrence_consensus", "rank_rollup", "small_size_filter"]
    with pytest.raises(InputError, match="task='nope': unknown task"):
        get_task("nope")


def test_rank_rollup_writes_terminal_classification_applied_to_the_demoted_source(platform):
    job = run("rank_rollup", platform)
    [rolled] = terminal("occ-vanessa")
    assert (rolled.taxon.name, rolled.taxon.rank) == ("Vanessa", "genus")
    assert rolled.score == pytest.approx(0.8, abs=1e-6)
    assert rolled.applied_to.algorithm.key == "moths-v1"
    assert rolled.applied_to.terminal is False
    assert rolled.job_id == job.pk
    assert rolled.scores is None  # a roll-up has no score vector: it is not rolled up again
    assert [e["rank"] for e in rolled.details["evidence"]] == ["species", "genus"]
    assert rolled.details["evidence"][0] == {"rank": "species", "taxon": "Vanessa atalanta", "score": 0.5}
    # confident species stays as it is
    [confident] = terminal("occ-confident")
    assert confident.algorithm.key == "moths-v1"
    assert job.metrics["transitions"] == {"species -> genus": 4, "species -> family": 1}


def test_rank_rollup_algorithm_is_keyed_by_task_and_config(platform):
    for config in ({}, {"thresholds": {"species": 0.9, "genus": 0.5}}, {"mode": "distribution"}, {}):
        revert_job(run("rank_rollup", platform, config))
    assert Algorithm.objects.filter(task_type="rank_rollup").count() == 3


def test_a_run_that_changes_nothing_creates_no_algorithm(platform):
    run("rank_rollup", platform, {"thresholds": {"species": 0.01}})
    assert not Algorithm.objects.filter(task_type="rank_rollup").exists()


def test_rerunning_the_same_task_and_config_creates_nothing(platform):
    run("rank_rollup", platform)
    before = snapshot()
    job = run("rank_rollup", platform)
    assert snapshot() == before
    assert job.metrics["changed"] == 0
    assert Algorithm.objects.filter(task_type="rank_rollup").count() == 1


def test_determination_follows_the_new_terminal_classification(platform):
    assert determination("occ-vanessa") == "Vanessa atalanta"
    job = run("rank_rollup", platform)
    assert determination("occ-vanessa") == "Vanessa"
    change = DeterminationChange.objects.filter(occurrence__key="occ-vanessa").first()
    assert change.job_id == job.pk and change.taxon.name == "Vanessa"


def test_identification_outranks_predictions(platform):
    occurrence = Occurrence.objects.get(key="occ-vanessa")
    from django.utils import timezone

    Identification.objects.create(
        occurrence=occurrence, taxon=Taxon.objects.get(name="Vanessa cardui"), who="expert", created_at=timezone.now()
    )
    run("rank_rollup", platform)
    assert determination("occ-vanessa") == "Vanessa cardui"


def test_withdrawn_identification_is_ignored(platform):
    from django.utils import timezone

    from taxopost.observations.determinations import recompute_determinations

    occurrence = Occurrence.objects.get(key="occ-vanessa")
    Identification.objects.create(
        occurrence=occurrence,
        taxon=Taxon.objects.get(name="Danaus plexippus"),
        who="expert",
        withdrawn=True,
        created_at=timezone.now(),
    )
    recompute_determinations([occurrence.pk])
    assert determination("occ-vanessa") == "Vanessa atalanta"


def test_chain_mask_then_rollup_then_size_filter_walks_back_to_the_model(platform):
    run("class_masking", platform, {"taxa_list": "regional"})
    # Noctua pronuba is not in the regional list: masking moves it to a listed taxon.
    [masked] = terminal("occ-noctua")
    assert masked.algorithm.task_type == "class_masking"
    assert masked.taxon.name == "Vanessa atalanta"
    assert masked.category_map_id == masked.applied_to.category_map_id
    run("rank_rollup", platform)
    run("small_size_filter", platform)
    [tiny] = terminal("occ-tiny")
    assert tiny.taxon.name == "Not identifiable" and tiny.score == 1.0
    keys = chain(tiny)
    assert keys[-1] == "moths-v1"
    assert [Algorithm.objects.get(key=k).task_type for k in keys] == [
        "small_size_filter",
        "rank_rollup",
        "class_masking",
        "classification",
    ]


def test_rollup_skips_classifications_without_a_score_vector(platform):
    run("small_size_filter", platform)
    job = run("rank_rollup", platform)
    # the "Not identifiable" classification carries no vector and is not examined
    assert terminal("occ-tiny")[0].taxon.name == "Not identifiable"
    assert job.metrics["examined"] == 5


def test_masking_algorithm_is_one_per_source_taxa_list_and_reweight(platform):
    run("class_masking", platform, {"taxa_list": "regional"})
    run("class_masking", platform, {"taxa_list": "regional"})
    assert Algorithm.objects.filter(task_type="class_masking").count() == 1
    masking = Algorithm.objects.get(task_type="class_masking")
    assert masking.source_algorithm.key == "moths-v1"
    assert masking.category_map_id == Algorithm.objects.get(key="moths-v1").category_map_id


def test_masking_skips_rows_whose_result_would_not_change(platform):
    job = run("class_masking", platform, {"taxa_list": "regional"})
    # every row of the fixture puts some mass on classes outside the list
    assert job.metrics["changed"] == 6
    again = run("class_masking", platform, {"taxa_list": "regional", "source_algorithm": None})
    assert again.metrics["changed"] == 0


def _model_outputs_as_logits() -> None:
    """Store the classifier's outputs as logits only, as an import of logits does."""
    for clf in Classification.objects.filter(algorithm__key="moths-v1"):
        clf.logits, clf.scores = np.log(np.frombuffer(clf.scores, dtype="<f4")).astype("<f4").tobytes(), None
        clf.save(update_fields=["logits", "scores"])


def _terminal_taxa() -> dict[int, str]:
    return dict(Classification.objects.filter(terminal=True).values_list("detection_id", "taxon__name"))


def test_masking_again_to_the_same_list_changes_nothing_when_the_model_gave_logits(platform):
    """A masking output keeps the model's logits: masking again must not remove their mass twice."""
    _model_outputs_as_logits()
    assert run("class_masking", platform, {"taxa_list": "regional"}).metrics["changed"] == 6
    rows = Classification.objects.count()
    assert run("class_masking", platform, {"taxa_list": "regional"}).metrics["changed"] == 0
    masked = Algorithm.objects.get(task_type="class_masking").key
    named = run("class_masking", platform, {"taxa_list": "regional", "source_algorithm": masked})
    assert named.metrics["changed"] == 0
    assert Classification.objects.count() == rows


def test_masking_a_masked_output_to_another_list_keeps_what_both_admit(platform):
    from taxopost.taxa.operations import import_taxa_list

    _model_outputs_as_logits()
    import_taxa_list("vanessa only", Taxon.objects.filter(name="Vanessa").values_list("id", flat=True))
    direct = run("class_masking", platform, {"taxa_list": "vanessa only", "source_algorithm": "moths-v1"})
    expected = _terminal_taxa()
    revert_job(direct)
    run("class_masking", platform, {"taxa_list": "regional"})
    masked = Algorithm.objects.get(task_type="class_masking", config__taxa_list="regional").key
    run("class_masking", platform, {"taxa_list": "vanessa only", "source_algorithm": masked})
    assert _terminal_taxa() == expected  # Vanessa lies inside the regional list
    assert {name.split()[0] for name in expected.values()} == {"Vanessa"}


def test_masking_with_an_unknown_taxa_list_is_refused_before_the_job_exists(platform):
    with pytest.raises(InputError, match="config.taxa_list='nowhere': no taxa list has this name"):
        create_job("class_masking", Job.CAPTURE_SET, platform.pk, {"taxa_list": "nowhere"})
    assert Job.objects.count() == 0


def test_small_size_filter_skips_detections_without_a_box_and_counts_them(platform):
    job = run("small_size_filter", platform)
    assert job.metrics["changed"] == 1
    assert job.metrics["skipped"]["no bbox or image size"] == 1
    assert determination("occ-tiny") == "Not identifiable"


def test_dry_run_writes_nothing_and_summarises(platform):
    before = snapshot()
    job = run("rank_rollup", platform, dry_run=True)
    assert snapshot() == before
    assert Algorithm.objects.filter(task_type="rank_rollup").count() == 0
    preview = job.result["preview"]
    assert preview["changed"] == 5
    assert preview["transitions"] == {"species -> genus": 4, "species -> family": 1}
    assert {row["to"] for row in preview["sample"]} == {"Vanessa", "Catocala", "Noctua", "Nymphalidae"}
    assert determination("occ-vanessa") == "Vanessa atalanta"


def test_dry_run_of_size_filter_creates_no_label(platform):
    run("small_size_filter", platform, dry_run=True)
    assert not Taxon.objects.filter(name="Not identifiable").exists()


def test_revert_restores_the_previous_state(platform):
    before = snapshot()
    job = run("rank_rollup", platform)
    summary = revert_job(job)
    assert summary["removed"] == 5 and summary["restored"] == 5
    assert snapshot() == before
    assert determination("occ-vanessa") == "Vanessa atalanta"
    with pytest.raises(InputError, match="already reverted"):
        revert_job(Job.objects.get(pk=job.pk))


def test_revert_is_refused_when_a_later_job_built_on_the_output(platform):
    first = run("rank_rollup", platform)
    later = run("small_size_filter", platform, {"size_threshold": 0.2})
    with pytest.raises(InputError, match=f"job {later.pk} built on its output: revert that first"):
        revert_job(first)
    revert_job(later)
    revert_job(Job.objects.get(pk=first.pk))


def test_job_on_one_occurrence_touches_only_it(platform):
    occurrence = Occurrence.objects.get(key="occ-catocala")
    job = create_job("rank_rollup", Job.OCCURRENCE, occurrence.pk, {})
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor

    EmbeddedExecutor().submit(job)
    assert job.status == Job.SUCCEEDED
    assert job.metrics["changed"] == 1
    assert determination("occ-catocala") == "Catocala"
    assert determination("occ-vanessa") == "Vanessa atalanta"


def test_bad_config_is_an_input_error_naming_the_field(platform):
    with pytest.raises(InputError, match=r"config.thresholds.genus=1.5: must be in \(0, 1\]"):
        create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {"thresholds": {"genus": 1.5}})
    with pytest.raises(InputError, match="scope.capture_set=999"):
        create_job("rank_rollup", Job.CAPTURE_SET, 999, {})


def test_cancel_before_start_cancels_at_once(platform):
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor
    from taxopost.postprocessing.running.operations import cancel_job

    job = create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {})
    cancel_job(job)
    EmbeddedExecutor().submit(job)
    assert job.status == Job.CANCELED
    assert Classification.objects.filter(job=job).count() == 0


def _chunk_queries(task_key: str, capture_set, config: dict, n: int) -> int:
    """Queries of one whole chunk step (begin, read, write, progress) of a job planned in chunks of ``n``."""
    from taxopost.jobs.models import JobChunk
    from taxopost.postprocessing.running.chunk import DONE, run_chunk
    from taxopost.postprocessing.running.lifecycle import claim, finish

    job = create_job(task_key, Job.CAPTURE_SET, capture_set.pk, config, chunk_size=n)
    claimed = claim(job.pk, "embedded")
    chunk = JobChunk.objects.get(job=job, index=0)
    assert chunk.size == n
    with CaptureQueriesContext(connection) as queries:
        assert run_chunk(chunk.pk, task=claimed.task).state == DONE
    assert finish(job.pk).status == Job.SUCCEEDED  # the whole scope was one chunk
    return len(queries)


@pytest.mark.parametrize(
    ("task", "config"),
    [("rank_rollup", {}), ("class_masking", {"taxa_list": "regional"}), ("small_size_filter", {"size_threshold": 0.5})],
)
def test_a_chunk_costs_the_same_queries_for_10_or_1000_classifications(db, tmp_path, task, config):
    from taxopost.observations.models import CaptureSet

    from .conftest import ROWS

    _load_many(tmp_path, "warm-up", 2, ROWS)  # writes the task's output algorithm once
    _chunk_queries(task, CaptureSet.objects.get(name="warm-up"), config, 2)
    counts = []
    for n in (10, 1000):
        _load_many(tmp_path, f"set-{n}", n, ROWS)
        counts.append(_chunk_queries(task, CaptureSet.objects.get(name=f"set-{n}"), config, n))
    assert counts[0] == counts[1]


def _load_many(tmp_path, name: str, n: int, rows) -> None:
    from taxopost.ml.operations import get_or_create_algorithm, import_category_map
    from taxopost.observations.predictions import import_predictions
    from taxopost.taxa.operations import import_taxa_list, import_taxonomy

    from .conftest import LABELS, taxonomy, write_predictions

    import_taxonomy(taxonomy())
    category_map, _ = import_category_map(LABELS)
    get_or_create_algorithm("moths-v1", category_map=category_map)
    import_taxa_list("regional", Taxon.objects.filter(name__in=["Vanessa", "Danaus"]).values_list("id", flat=True))
    many = [
        (f"{name}-occ-{i}", f"{name}-img-{i // 4}.jpg", [i % 4 * 10, 0, i % 4 * 10 + 5, 5], rows[1][3])
        for i in range(n)
    ]
    import_predictions(write_predictions(tmp_path / f"{name}.jsonl", many, capture_set=name))


def test_masking_to_a_short_list_stores_sparse_vectors_that_read_back_exactly(platform):
    """A list that keeps few classes gives mostly-zero vectors: stored sparse, read as the dense rows."""
    from taxopost.observations.vectors import SPARSE_TAG, stack
    from taxopost.taxa.operations import import_taxa_list

    import_taxa_list("one genus", Taxon.objects.filter(name="Catocala").values_list("id", flat=True))
    job = run("class_masking", platform, {"taxa_list": "one genus"})
    masked = list(Classification.objects.filter(job=job).select_related("category_map", "applied_to"))
    assert len(masked) == job.metrics["changed"] > 0
    n = masked[0].category_map.n_classes
    for clf in masked:
        assert bytes(clf.scores).startswith(SPARSE_TAG) and len(clf.scores) < 4 * n
        source = stack([clf.applied_to.scores], n)[0]
        kept = np.zeros(n, dtype=bool)
        kept[[4, 5, 6]] = True  # Catocala ilia, Catocala relicta and the genus-level Catocala class
        expected = np.where(kept, source, 0) / source[kept].sum()
        np.testing.assert_allclose(stack([clf.scores], n)[0], expected, rtol=1e-6)
    rolled = run("rank_rollup", platform)  # a later task reads the sparse vectors as any others
    assert rolled.status == Job.SUCCEEDED and rolled.metrics["examined"] == job.metrics["examined"]
