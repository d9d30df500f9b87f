"""Class masking says what it will do: a coverage warning with the numbers at job creation and in
previews (the one function of the core, fed a sample of the scope's vectors), and an option to
write only when the winning taxon changes."""

from __future__ import annotations

import numpy as np
import pytest

from taxopost.cli import main
from taxopost.core.coverage import class_mass, mask_coverage
from taxopost.jobs.models import Job
from taxopost.ml.models import Algorithm
from taxopost.ml.operations import core_category_map
from taxopost.observations.models import Classification
from taxopost.observations.vectors import stack
from taxopost.postprocessing.running.operations import create_job, task_warnings
from taxopost.postprocessing.tasks import class_masking as masking_adapter
from taxopost.taxa.models import Taxon
from taxopost.taxa.operations import import_taxa_list, load_taxonomy
from tests.platform.conftest import LABELS
from tests.platform.helpers import run, snapshot, terminal


@pytest.fixture
def narrow(platform):
    """A list of one genus: Danaus, 1 of the model's 8 classes."""
    import_taxa_list("narrow", Taxon.objects.filter(name="Danaus").values_list("id", flat=True))
    return platform


def expected_coverage():
    """What the list keeps, computed here from every stored vector with the core's functions."""
    algorithm = Algorithm.objects.get(key="moths-v1")
    category_map = core_category_map(algorithm.category_map_id, load_taxonomy())
    blobs = list(Classification.objects.filter(algorithm=algorithm).order_by("id").values_list("scores", flat=True))
    keep = np.array([label == "Danaus plexippus" for label in LABELS])
    return mask_coverage(keep, category_map, class_mass(stack(blobs, len(LABELS)), category_map), rows=len(blobs))


def test_a_list_keeping_few_classes_is_warned_about_with_the_numbers(narrow):
    job = create_job("class_masking", Job.CAPTURE_SET, narrow.pk, {"taxa_list": "narrow"})
    [warning] = job.result["warnings"]
    expected = expected_coverage()
    assert (warning["kept_classes"], warning["n_classes"], warning["rows"], warning["scope_rows"]) == (1, 8, 6, 6)
    assert warning["kept_mass"] == pytest.approx(expected.kept_mass, abs=1e-6)
    assert warning["algorithm"] == "moths-v1" and warning["code"] == "low_coverage"
    assert warning["message"] == expected.warning()
    assert "keeps 1 of 8 classes (12.5%)" in warning["message"]
    assert job.logs.filter(level="warning", message=warning["message"]).exists()


def test_a_list_keeping_enough_says_nothing(platform):
    job = create_job("class_masking", Job.CAPTURE_SET, platform.pk, {"taxa_list": "regional"})
    assert "warnings" not in job.result
    assert task_warnings("class_masking", Job.CAPTURE_SET, platform.pk, {"taxa_list": "regional"}) == []


def test_the_preview_keeps_the_warning_next_to_its_summary(narrow):
    before = snapshot()
    preview = run("class_masking", narrow, {"taxa_list": "narrow"}, dry_run=True)
    assert snapshot() == before
    assert preview.result["preview"]["changed"] == 6
    assert preview.result["warnings"][0]["kept_classes"] == 1


def test_the_warning_measures_every_model_output_of_the_scope_current_or_not(narrow):
    first = task_warnings("class_masking", Job.CAPTURE_SET, narrow.pk, {"taxa_list": "narrow"})
    run("rank_rollup", narrow)  # demotes 5 of the 6 model outputs: one stays to be masked
    again = task_warnings("class_masking", Job.CAPTURE_SET, narrow.pk, {"taxa_list": "narrow"})
    assert again == first


def test_the_mass_is_measured_on_a_bounded_systematic_sample(narrow, monkeypatch):
    monkeypatch.setattr(masking_adapter, "COVERAGE_SAMPLE", 2)
    monkeypatch.setattr(masking_adapter, "COVERAGE_BATCH", 1)
    [warning] = task_warnings("class_masking", Job.CAPTURE_SET, narrow.pk, {"taxa_list": "narrow"})
    assert (warning["rows"], warning["scope_rows"]) == (2, 6)
    assert "of a sample of 2 of 6 predictions" in warning["message"]


def test_the_warning_reads_logits_as_the_task_does(narrow):
    expected = expected_coverage()
    for clf in Classification.objects.filter(algorithm__key="moths-v1"):
        clf.logits, clf.scores = np.log(np.frombuffer(clf.scores, dtype="<f4")).astype("<f4").tobytes(), None
        clf.save(update_fields=["logits", "scores"])
    [warning] = task_warnings("class_masking", Job.CAPTURE_SET, narrow.pk, {"taxa_list": "narrow"})
    assert warning["kept_mass"] == pytest.approx(expected.kept_mass, abs=1e-5)


def test_the_run_command_prints_the_warning(narrow, capsys):
    code = main(["run", "class_masking", "--capture-set", "station-1", "--taxa-list", "narrow", "--dry-run"])
    assert code == 0
    captured = capsys.readouterr()
    job = Job.objects.get()
    assert f"taxopost: warning: job {job.pk}: the taxa list keeps 1 of 8 classes (12.5%)" in captured.err
    assert "warning" in captured.out  # the job's table repeats it


def test_winner_changes_only_writes_rows_whose_winning_taxon_changes(platform):
    everything = run("class_masking", platform, {"taxa_list": "regional"}, dry_run=True)
    job = run("class_masking", platform, {"taxa_list": "regional", "winner_changes_only": True})
    moved = [s for s in everything.result["preview"]["sample"] if s["from"] != s["to"]]
    assert job.metrics["changed"] == len(moved) < everything.metrics["changed"]
    assert job.metrics["skipped"] == {"winner unchanged": 6 - len(moved)}
    for row in Classification.objects.filter(job=job):
        assert row.taxon_id != row.applied_to.taxon_id and row.details["winner_changes_only"] is True
    [unchanged] = terminal("occ-vanessa")  # V. atalanta stays the winner: the model's output stays current
    assert unchanged.algorithm.key == "moths-v1"
    output = Algorithm.objects.get(task_type="class_masking")
    assert output.config["winner_changes_only"] is True and "(winner changes only)" in output.name
    again = run("class_masking", platform, {"taxa_list": "regional", "winner_changes_only": True})
    assert again.metrics["changed"] == 0


def test_the_default_algorithm_key_is_the_one_of_earlier_runs(platform):
    run("class_masking", platform, {"taxa_list": "regional"})
    output = Algorithm.objects.get(task_type="class_masking")
    assert set(output.config) == {"taxa_list", "reweight", "source_algorithm"}
