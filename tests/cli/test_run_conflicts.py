"""`taxopost run`: a config field given different values by two sources is refused, naming both."""

from __future__ import annotations

import json

import pytest

from taxopost.cli import main
from taxopost.jobs.models import Job
from tests.platform.conftest import platform  # noqa: F401  (the small moth capture set)

RUN = ["run", "occurrence_consensus", "--capture-set", "anywhere"]


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "mean", "--set", "method=geometric"], "--method='mean': conflicts with --set method='geometric'"),
        (
            ["--set", "min_detections=true", "--min-detections", "1"],
            "--min-detections=1: conflicts with --set min_detections=True",
        ),
        (
            ["--config", json.dumps({"method": "geometric"}), "--set", "method=mean", "--set", "min_detections=3",
             "--min-detections", "5", "--method", "geometric"],
            "--method='geometric': conflicts with --set method='mean'; --min-detections=5: conflicts with --set "
            "min_detections=3",
        ),
    ],
)  # fmt: skip
def test_two_values_for_one_field_are_refused_naming_both(args, message, capsys):
    """The task's option beat --set, which beat --config: --method mean --set method=geometric ran mean."""
    assert main([*RUN, *args]) == 2
    assert _error(capsys) == f"taxopost: error: {message}"


def test_the_command_line_overrides_a_config_file(platform, capsys):  # noqa: F811
    """A saved config is a base: --set and the task's options override it (docs/platform.md)."""
    args = [
        "run",
        "rank_rollup",
        "--capture-set",
        platform.name,
        "--dry-run",
        "--config",
        json.dumps({"mode": "lineage"}),
    ]
    assert main([*args, "--set", "mode=distribution"]) == 0, capsys.readouterr().err
    assert main([*args, "--mode", "distribution"]) == 0, capsys.readouterr().err
    assert [job.config["mode"] for job in Job.objects.order_by("pk")] == ["distribution", "distribution"]


def test_the_same_value_given_twice_is_one_setting(platform, capsys):  # noqa: F811
    args = ["run", "rank_rollup", "--capture-set", platform.name, "--dry-run", "--mode", "distribution"]
    args += ["--set", "mode=distribution", "--config", json.dumps({"mode": "distribution"})]
    assert main(args) == 0, capsys.readouterr().err
    assert Job.objects.get().config["mode"] == "distribution"
