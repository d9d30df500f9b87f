"""A bad config on the command line: every problem at once, each named the way the user gave it."""

from __future__ import annotations

import json

import pytest

from taxopost.errors import InputError, InputErrors
from taxopost.jobs.models import Job
from taxopost.postprocessing.running.operations import create_job


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_run_names_the_options_and_reports_every_problem(platform, capsys):
    from taxopost.cli import main

    args = ["run", "rank_rollup", "--capture-set", platform.name, "--dry-run"]
    assert main([*args, "--threshold", "species=1.5", "--threshold", "genus=0", "--mode", "sideways"]) == 2
    assert _error(capsys) == (
        "taxopost: error: --threshold='species=1.5': must be in (0, 1]; --threshold='genus=0': must be in (0, 1]; "
        "--mode='sideways': Input should be 'lineage' or 'distribution'"
    )
    assert main([*args, "--threshold", "tribus=0.5"]) == 2
    assert _error(capsys).startswith("taxopost: error: --threshold='tribus': unknown rank")
    assert main(["run", "class_masking", "--capture-set", platform.name, "--taxa-list", "nowhere"]) == 2
    assert _error(capsys) == "taxopost: error: --taxa-list='nowhere': no taxa list has this name"
    assert not Job.objects.exists()


def test_run_names_set_and_config_as_given(platform, capsys):
    from taxopost.cli import main

    args = ["run", "rank_rollup", "--capture-set", platform.name]
    assert main([*args, "--set", 'thresholds={"genus": 2}', "--config", json.dumps({"mode": "up"})]) == 2
    assert _error(capsys) == (
        "taxopost: error: --set thresholds.genus=2: must be in (0, 1]; "
        "--config mode='up': Input should be 'lineage' or 'distribution'"
    )
    assert not Job.objects.exists()


def test_a_job_records_every_problem(platform):
    with pytest.raises(InputErrors) as caught:
        create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {"thresholds": {"genus": 2, "species": -1}, "x": 1})
    fields = [error.field for error in caught.value.errors]
    assert fields == ["config.thresholds.genus", "config.thresholds.species", "config.x"]
    assert isinstance(caught.value, InputError) and caught.value.field == "config.thresholds.genus"
    assert caught.value.message.count("; ") == 2


def test_a_threshold_that_is_no_number_hides_no_other_thresholds_problem(platform, capsys):
    """pydantic's number check stopped at genus=abc, and species=1.5 went unreported."""
    from taxopost.cli import main

    args = ["run", "rank_rollup", "--capture-set", platform.name, "--threshold", "species=1.5"]
    assert main([*args, "--threshold", "genus=abc"]) == 2
    assert _error(capsys) == (
        "taxopost: error: --threshold='species=1.5': must be in (0, 1]; "
        "--threshold='genus=abc': must be a number in (0, 1]"
    )
    with pytest.raises(InputError, match="config.thresholds.species=True: must be a number"):
        create_job("rank_rollup", Job.CAPTURE_SET, platform.pk, {"thresholds": {"species": True}})


def test_rollup_on_files_names_options_and_the_config_file(tmp_path, capsys):
    from taxopost.cli import main
    from taxopost.cli.demo import example_path

    (tmp_path / "cal.json").write_text(json.dumps({"thresholds": {"species": 2, "genus": 0.5}}))
    args = ["rollup", "--taxonomy", str(example_path("taxonomy.csv")), "--scores", str(example_path("scores.csv"))]
    args += ["--category-map", str(example_path("category_map.json")), "--output", str(tmp_path / "out.csv")]
    assert main([*args, "--config", str(tmp_path / "cal.json"), "--mode", "up"]) == 2
    assert _error(capsys) == (
        f"taxopost: error: {tmp_path / 'cal.json'}: thresholds.species=2: must be in (0, 1]; "
        "--mode='up': Input should be 'lineage' or 'distribution'"
    )
    assert main([*args, "--threshold", "species=0.9", "--threshold", "genus=7"]) == 2
    assert _error(capsys) == "taxopost: error: --threshold='genus=7': must be in (0, 1]"
    assert not (tmp_path / "out.csv").exists()
