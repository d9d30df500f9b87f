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
            ["--config", json.dumps({"min_detections": 3}), "--min-detections", "4"],
            "--min-detections=4: conflicts with --config min_detections=3",
        ),
        (
            ["--config", json.dumps({"weighting": "area"}), "--set", "weighting=none"],
            "--set weighting='none': conflicts with --config weighting='area'",
        ),
        (
            ["--set", "min_detections=true", "--min-detections", "1"],
            "--min-detections=1: conflicts with --set min_detections=True",
        ),
        (
            ["--config", json.dumps({"method": "geometric"}), "--set", "method=mean", "--set", "min_detections=3",
             "--min-detections", "5"],
            "--set method='mean': conflicts with --config method='geometric'; "
            "--min-detections=5: conflicts with --set min_detections=3",
        ),
    ],
)  # fmt: skip
def test_two_values_for_one_field_are_refused_naming_both(args, message, capsys):
    """The task's option beat --set, which beat --config: --method mean --set method=geometric ran mean."""
    assert main([*RUN, *args]) == 2
    assert _error(capsys) == f"taxopost: error: {message}"


def test_the_same_value_given_twice_is_one_setting(platform, capsys):  # noqa: F811
    args = ["run", "rank_rollup", "--capture-set", platform.name, "--dry-run", "--mode", "distribution"]
    args += ["--set", "mode=distribution", "--config", json.dumps({"mode": "distribution"})]
    assert main(args) == 0, capsys.readouterr().err
    assert Job.objects.get().config["mode"] == "distribution"
