"""A bounded load on the API served by gunicorn while a roll-up job runs on PostgreSQL.

Checked here: no request fails and the job's result equals a run without load. The reported
figures (20 clients for 30 s, requests/s and latency percentiles) come from
``benchmarks/load_api.py``; timing is never asserted in a test.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection

from tests.loadtools import gunicorn, run_clients, start_job, wait_for_job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql]


def _load(tmp_path, n: int) -> int:
    from taxopost.ml.operations import get_or_create_algorithm, import_category_map
    from taxopost.observations.models import CaptureSet
    from taxopost.observations.predictions import import_predictions
    from taxopost.taxa.operations import import_taxonomy
    from tests.platform.conftest import LABELS, ROWS, taxonomy, write_predictions

    import_taxonomy(taxonomy())
    category_map, _ = import_category_map(LABELS)
    get_or_create_algorithm("moths-v1", category_map=category_map)
    boxes = [[i % 4 * 10, 0, i % 4 * 10 + 200, 200] for i in range(n)]
    rows = [(f"occ-{i}", f"img-{i // 4}.jpg", boxes[i], ROWS[i % 6][3]) for i in range(n)]
    import_predictions(write_predictions(tmp_path / "load.jsonl", rows, capture_set="loaded"))
    return CaptureSet.objects.get(name="loaded").pk


def _snapshot(job_id: int) -> set[tuple]:
    from taxopost.observations.models import Classification

    fields = ("detection_id", "taxon_id", "score", "applied_to_id")
    rows = Classification.objects.filter(job_id=job_id).values_list(*fields)
    return {(d, t, round(s, 6), a) for d, t, s, a in rows}


def test_api_under_load_while_a_job_runs(tmp_path, django_user_model):
    from taxopost.access.tokens import create_token
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor
    from taxopost.postprocessing.running.operations import create_job
    from taxopost.postprocessing.running.revert import revert_job

    capture_set = _load(tmp_path, 3000)
    staff = django_user_model.objects.create_superuser("load", "load@example.org", "a-load-password")
    token = create_token(staff)[1]
    settings = connection.settings_dict
    url = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
    config = {"thresholds": {"species": 0.8, "genus": 0.6, "family": 0.4}}
    with gunicorn(url, workers=2, threads=4, data_dir=str(tmp_path)) as port:
        job_id = start_job(port, token, capture_set, config)
        load = run_clients(port, token, clients=6, seconds=5, capture_set=capture_set, job=job_id)
        state = wait_for_job(port, token, job_id)
    assert load["errors"] == 0, json.dumps(load)
    assert all(load["by_kind"][kind]["requests"] > 0 for kind in ("job poll", "occurrence page")), load["by_kind"]
    assert state["status"] == "succeeded", state
    under_load = _snapshot(job_id)
    assert len(under_load) == state["metrics"]["changed"] > 0
    revert_job(Job.objects.get(pk=job_id))
    quiet = create_job("rank_rollup", Job.CAPTURE_SET, capture_set, config)
    EmbeddedExecutor().submit(quiet)
    assert _snapshot(quiet.pk) == under_load
