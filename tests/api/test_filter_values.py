"""A filter on a key that names nothing is a 400 naming the value, as ``status=bogus`` is."""

from __future__ import annotations

import pytest

from taxopost.tasks import task_keys
from tests.platform.helpers import run

API = "/api/v1"
KNOWN_TASKS = ", ".join(task_keys())


@pytest.mark.parametrize(
    ("resource", "param", "message"),
    [
        ("jobs", "task", f"unknown task; known tasks: {KNOWN_TASKS}"),
        ("classifications", "task", f"must be 'classification' or a task key ({KNOWN_TASKS})"),
        ("algorithms", "task_type", f"must be 'classification' or a task key ({KNOWN_TASKS})"),
        ("classifications", "algorithm", "no algorithm has this key"),
        ("occurrences", "algorithm", "no algorithm has this key"),
    ],
)
def test_an_unknown_task_or_algorithm_is_a_400_naming_it(reader, platform, resource, param, message):
    """They answered 200 with an empty list, which reads as "nothing of that one yet"."""
    response = reader.get(f"{API}/{resource}/", {param: "nope"})
    assert response.status_code == 400
    assert response.json() == {param: [f"{message} (got 'nope')"]}


@pytest.mark.parametrize(
    ("resource", "param", "value", "count"),
    [
        ("jobs", "task", "rank_rollup", 1),
        ("jobs", "task", "small_size_filter", 0),  # registered, never run: an empty list
        ("classifications", "task", "classification", 6),
        ("classifications", "task", "rank_rollup", 5),
        ("algorithms", "task_type", "classification", 1),
        ("classifications", "algorithm", "moths-v1", 6),
        ("occurrences", "algorithm", "moths-v1", 1),
        ("jobs", "task", "", 1),  # an empty value is no filter
    ],
)
def test_a_known_task_or_algorithm_still_filters(reader, platform, resource, param, value, count):
    run("rank_rollup", platform)
    response = reader.get(f"{API}/{resource}/", {param: value})
    assert response.status_code == 200, response.content
    assert response.json()["count"] == count
