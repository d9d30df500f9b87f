"""A capture set typed by a person: found by name without case or punctuation, "did you mean" for a near miss.

The same lookup (``CaptureSet.named``) serves ``taxopost run``, ``jobs list``, export and the
API; the API's side is in tests/api/test_capture_set_names.py.
"""

from __future__ import annotations

import pytest

from taxopost.errors import InputError
from taxopost.jobs.models import Job
from taxopost.observations.models import CaptureSet


@pytest.fixture
def stations(platform):
    """The platform's ``station-1`` and two more named the way the demo names them."""
    july = CaptureSet.objects.create(project=platform.project, name="Station 2 · July 2024")
    august = CaptureSet.objects.create(project=platform.project, name="Station 2 · August 2024")
    return platform, july, august


def test_named_finds_the_exact_name_then_without_case_and_punctuation(stations):
    platform, july, _ = stations
    assert CaptureSet.named("Station 2 · July 2024") == july
    for typed in ("station 2 july 2024", "STATION 2 - JULY 2024", "  Station 2 . July 2024 ", "station_2_july_2024"):
        assert CaptureSet.named(typed) == july, typed
    assert CaptureSet.named("Station-1") == platform


def test_named_takes_a_number_as_an_id_unless_a_capture_set_is_called_so(stations):
    platform, july, _ = stations
    assert CaptureSet.named(str(july.pk)) == july
    assert CaptureSet.named(july.pk) == july
    called = CaptureSet.objects.create(project=platform.project, name=str(platform.pk))
    assert CaptureSet.named(str(platform.pk)) == called


def test_a_near_miss_gets_did_you_mean(stations):
    with pytest.raises(InputError, match=r"did you mean 'Station 2 · July 2024'") as caught:
        CaptureSet.named("Station 2 · Jul 2024", field="capture_set")
    assert caught.value.field == "capture_set" and caught.value.value == "Station 2 · Jul 2024"
    with pytest.raises(InputError, match=r"there are 'Station 2 · August 2024', 'Station 2 · July 2024', 'station-1'"):
        CaptureSet.named("nothing alike")


def test_names_equal_but_for_case_are_ambiguous(stations):
    platform, _, _ = stations
    CaptureSet.objects.create(project=platform.project, name="STATION-1")
    assert CaptureSet.named("station-1") == platform  # the exact name still wins
    with pytest.raises(InputError, match=r"matches several capture sets: 'STATION-1', 'station-1'"):
        CaptureSet.named("Station 1")


def test_no_capture_set_yet(db):
    with pytest.raises(InputError, match="there is none yet"):
        CaptureSet.named("anything")


# -- the CLI ------------------------------------------------------------------------------------


def test_run_takes_the_name_as_typed_and_says_did_you_mean(stations, capsys):
    from taxopost.cli import main

    platform, _, _ = stations
    assert main(["run", "small_size_filter", "--capture-set", "station 1", "--dry-run"]) == 0
    assert Job.objects.get().scope_id == platform.pk
    assert main(["run", "small_size_filter", "--capture-set", "Station 2 · Jully 2024", "--dry-run"]) == 2
    assert "did you mean 'Station 2 · July 2024'" in capsys.readouterr().err


def test_jobs_list_filters_by_task_status_and_capture_set(stations, capsys):
    from taxopost.cli import main

    platform, july, _ = stations
    assert main(["run", "small_size_filter", "--capture-set", platform.name]) == 0
    assert main(["run", "rank_rollup", "--capture-set", platform.name, "--dry-run"]) == 0
    assert main(["run", "rank_rollup", "--capture-set", july.name, "--dry-run"]) == 0
    capsys.readouterr()

    def listed(*options: str) -> list[str]:
        assert main(["jobs", "list", *options]) == 0
        lines = capsys.readouterr().out.splitlines()
        return [line.split("│")[1].strip() for line in lines if line.startswith("│")]

    size, station_1, july_job = Job.objects.order_by("pk")
    assert listed() == [str(july_job.pk), str(station_1.pk), str(size.pk)]
    assert listed("--task", "rank_rollup") == [str(july_job.pk), str(station_1.pk)]
    assert listed("--capture-set", "station 2 july 2024") == [str(july_job.pk)]
    assert listed("--task", "rank_rollup", "--capture-set", "station-1") == [str(station_1.pk)]
    assert listed("--status", "SUCCEEDED", "--task", "small_size_filter") == [str(size.pk)]
    assert main(["jobs", "list", "--status", "failed"]) == 0
    assert "no job matches" in capsys.readouterr().err
    # each row names its capture set, not its id
    assert main(["jobs", "list", "--capture-set", str(july.pk)]) == 0
    assert "Station 2 · July 2024 (dry run)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--status", "done"], "--status='done': must be one of created, queued, running, succeeded, failed"),
        (["--task", "rollup"], "--task='rollup': unknown task"),
        (["--capture-set", "Station 2 · Juli 2024"], "did you mean 'Station 2 · July 2024'"),
    ],
)
def test_jobs_list_refuses_an_unknown_filter_value(stations, capsys, options, message):
    from taxopost.cli import main

    assert main(["jobs", "list", *options]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_names_that_look_like_console_markup_are_printed_as_typed(platform, capsys, tmp_path):
    """Rich read ``[bold]`` and ``[/x]`` in a user's names as its own tags: text went missing, or
    the command crashed after its work was done."""
    from taxopost.cli import main

    odd = CaptureSet.objects.create(project=platform.project, name="Trap [bold]2[/] and [/x]")
    odd.images.set(platform.images.all())
    assert main(["run", "small_size_filter", "--capture-set", odd.name]) == 0
    capsys.readouterr()
    assert main(["jobs", "list"]) == 0
    assert "Trap [bold]2[/] and [/x]" in capsys.readouterr().out
    (tmp_path / "list.txt").write_text("Vanessa\n")
    assert main(["import", "taxa-list", str(tmp_path / "list.txt"), "--name", "list [/x]"]) == 0
    assert "taxa list 'list [/x]'" in capsys.readouterr().err
