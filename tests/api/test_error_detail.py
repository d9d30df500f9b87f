"""Domain errors as the API's field errors: several problems at once keep each one."""

from __future__ import annotations

from taxopost.api.jobs import input_error_detail
from taxopost.errors import InputError, InputErrors


def test_every_problem_is_kept_under_its_field():
    errors = InputErrors(
        [
            InputError("config.thresholds.genus", 2, "must be in (0, 1]"),
            InputError("config.thresholds.species", -1, "must be in (0, 1]"),
            InputError("config.mode", "up", "Input should be 'lineage' or 'distribution'"),
            InputError("scope.name", "Station 9", "no capture set has this name"),
        ]
    )
    assert input_error_detail(errors) == {
        "config": {
            "thresholds.genus": ["must be in (0, 1] (got 2)"],
            "thresholds.species": ["must be in (0, 1] (got -1)"],
            "mode": ["Input should be 'lineage' or 'distribution' (got 'up')"],
        },
        "scope": {"name": ["no capture set has this name (got 'Station 9')"]},
    }
    assert input_error_detail(InputError("task", "nope", "unknown task")) == {"task": ["unknown task (got 'nope')"]}
