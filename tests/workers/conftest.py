"""Real Celery workers for the tests: separate processes on Redis and the PostgreSQL test database.

Workers are started with ``taxopost worker`` (the command users run) in their own process
group, pointed at the database pytest-django created, and always killed at teardown. The
tests need PostgreSQL and Redis: where either is missing they skip with the reason, and fail
under ``CI=true``. ``make test`` runs them once, in its PostgreSQL pass.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from django.db import connection

from tests.conftest import in_ci
from tests.platform.conftest import LABELS, taxonomy

BROKER_URL = os.environ.get("TAXOPOST_TEST_BROKER_URL", "redis://127.0.0.1:6379/5")
BIN = Path(sys.executable).parent
STARTUP_SECONDS = 60
STALE_SECONDS = 2  # `taxopost jobs reap --stale-after` in the tests: seconds without heartbeat


def _missing_services() -> list[str]:
    import redis

    missing = []
    if connection.vendor != "postgresql":
        missing.append(f"PostgreSQL (the test database is {connection.vendor}; run with DATABASE_URL=postgres://...)")
    try:
        redis.Redis.from_url(BROKER_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        missing.append(f"Redis at {BROKER_URL} ({exc})")
    return missing


@pytest.fixture
def services(transactional_db):
    """PostgreSQL and Redis, an empty queue, and this process sending tasks to that broker."""
    missing = _missing_services()
    if missing:
        message = "Celery tests need " + " and ".join(missing)
        if in_ci():
            pytest.fail(f"{message} (CI=true: required)")
        pytest.skip(message)
    import redis

    from taxopost.celery import app

    redis.Redis.from_url(BROKER_URL).flushdb()  # messages of an earlier, interrupted run
    app.conf.broker_url = BROKER_URL
    yield


def database_url() -> str:
    """The URL of the test database this process uses (pytest-django's ``test_<name>``)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def taxopost_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "TAXOPOST_BROKER_URL": BROKER_URL,
        "TAXOPOST_DATA_DIR": str(tmp_path / "worker-data"),
        "TAXOPOST_JOB_WAIT_SECONDS": "0.5",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    env.pop("TAXOPOST_TEST_DATABASE", None)
    return env


class Worker:
    """One ``taxopost worker`` process group, its log in a file."""

    def __init__(self, process: subprocess.Popen, log: Path) -> None:
        self.process, self.log = process, log

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as when a machine dies."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


class Workers:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Worker] = []

    def start(self, *, concurrency: int = 1, **env: str) -> Worker:
        log = self.tmp_path / f"worker-{len(self.started)}.log"
        command = [str(BIN / "taxopost"), "worker", f"--concurrency={concurrency}", "--loglevel=info"]
        with open(log, "w") as handle:
            process = subprocess.Popen(
                command,
                env=taxopost_env(self.tmp_path, **env),
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed with its pool
            )
        worker = Worker(process, log)
        self.started.append(worker)
        wait_for(lambda: " ready." in log.read_text(errors="replace"), STARTUP_SECONDS, "the worker to start", worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.kill()


@pytest.fixture
def workers(services, tmp_path):
    started = Workers(tmp_path)
    yield started
    started.stop_all()


def wait_for(condition: Callable[[], object], seconds: float, what: str, worker: Worker | None = None):
    """Poll ``condition`` until it is truthy; fail naming ``what`` (with the worker's log) on timeout."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            log = f"\nworker log:\n{worker.tail()}" if worker is not None else ""
            pytest.fail(f"timed out after {seconds} s waiting for {what}{log}")
        time.sleep(0.05)


def taxopost(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the ``taxopost`` command on the test database and broker (``env``: other variables)."""
    return subprocess.run(
        [str(BIN / "taxopost"), *args], env=taxopost_env(tmp_path, **env), capture_output=True, text=True, timeout=120
    )


# -- data ---------------------------------------------------------------------------------------------


@pytest.fixture
def survey(services):
    """The taxonomy, the classifier and a regional taxa list; returns a loader of identical projects."""
    from taxopost.ml.operations import get_or_create_algorithm, import_category_map
    from taxopost.taxa.models import Taxon
    from taxopost.taxa.operations import import_taxa_list, import_taxonomy

    import_taxonomy(taxonomy())
    category_map, _ = import_category_map(LABELS)
    get_or_create_algorithm("moths-v1", category_map=category_map)
    regional = Taxon.objects.filter(name__in=["Vanessa", "Danaus", "Catocala ilia"]).values_list("id", flat=True)
    import_taxa_list("regional", regional)
    return load_project


def load_project(path: Path, project: str, n: int = 1200, *, seed: int = 7) -> None:
    """``n`` detections of one project, the same for every project name (same seed).

    Capture sets ``<project>`` (all images), ``<project>-a`` (the first two thirds) and
    ``<project>-b`` (the last two thirds): a and b overlap on the middle third. An occurrence
    spans one to three consecutive detections, so some span two chunks; some boxes are tiny.
    """
    from taxopost.observations.predictions import import_predictions

    rng = np.random.default_rng(seed)
    alpha = np.full(len(LABELS), 0.3)
    scores = rng.dirichlet(alpha, size=n)
    sizes = rng.choice([15, 60, 240], size=n, p=[0.15, 0.35, 0.5])
    records, occurrence, left = [], 0, 0
    for i in range(n):
        if left == 0:
            occurrence, left = occurrence + 1, int(rng.integers(1, 4))
        left -= 1
        image = i // 4
        x = (i % 4) * 250
        bbox = [x, 0, x + int(sizes[i]), int(sizes[i])]
        sets = [project]
        sets += [f"{project}-a"] if image < (n // 4) * 2 // 3 else []
        sets += [f"{project}-b"] if image >= (n // 4) // 3 else []
        for capture_set in sets:
            records.append(
                {
                    "project": project,
                    "capture_set": capture_set,
                    "image": {"path": f"img-{image}.jpg", "width": 1000, "height": 1000},
                    "bbox": bbox,
                    "occurrence": f"occ-{occurrence}",
                    "algorithm": "moths-v1",
                    "scores": [round(float(s), 6) for s in scores[i]],
                }
            )
    file = path / f"{project}.jsonl"
    file.write_text("".join(json.dumps(record) + "\n" for record in records))
    import_predictions(file)


def capture_set(name: str):
    from taxopost.observations.models import CaptureSet

    return CaptureSet.objects.get(name=name)


def project_state(project: str) -> tuple[Counter, dict]:
    """A project's classifications (detection, taxon, algorithm, score, applied_to chain, terminal)
    as a multiset, so duplicates count, keyed by what is the same across projects; and its
    occurrences' determinations."""
    from taxopost.observations.models import Classification, Occurrence

    rows = {
        c.pk: c
        for c in Classification.objects.filter(detection__source_image__project__name=project).select_related(
            "taxon", "algorithm", "detection__source_image"
        )
    }

    def describe(pk):
        c = rows[pk]
        below = describe(c.applied_to_id) if c.applied_to_id else None
        return (c.detection.source_image.path, c.detection.key, c.taxon.name, c.algorithm.key, round(c.score, 6), below)

    classifications = Counter((describe(pk), rows[pk].terminal, rows[pk].replaced_by_id is not None) for pk in rows)
    determinations = dict(Occurrence.objects.filter(project__name=project).values_list("key", "determination__name"))
    return classifications, determinations


def assert_chains_intact(project: str) -> None:
    """Outside the outputs a re-run replaced: no classification derived twice, none derived without
    being demoted, one answer per detection; no replaced output is an answer."""
    from django.db.models import Count

    from taxopost.observations.models import Classification

    every = Classification.objects.filter(detection__source_image__project__name=project)
    mine = every.filter(replaced_by=None)
    twice = mine.exclude(applied_to=None).values("applied_to").annotate(n=Count("id")).filter(n__gt=1)
    assert not twice.exists(), list(twice)
    assert not mine.filter(terminal=True, derived__in=mine).exists()
    assert not every.exclude(replaced_by=None).filter(terminal=True).exists()
    answers = mine.filter(terminal=True).values("detection").annotate(n=Count("id")).values_list("n", flat=True)
    assert set(answers) == {1}
