"""Helpers shared by the benchmark scripts: timing medians, the real AMI label space, loading a capture set."""

from __future__ import annotations

import csv
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from taxopost.core import CategoryMap, Taxonomy

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TAXOPOST_SHARED_DATA", REPO.parent / "shared" / "data"))


@contextmanager
def benchmark_database() -> Iterator[None]:
    """A database made for this run (Django's test database of ``DATABASE_URL``), named on the
    first line of the output and dropped after the run, whatever happens."""
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    print(f"database: {connection.vendor} ({os.environ['DATABASE_URL'].rsplit('@', 1)[-1]})")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        yield
    finally:
        teardown_databases(old, verbosity=0)


def demo_on_fresh_postgres(url: str, prefix: str):
    """The demo project loaded into a PostgreSQL database made anew at ``url`` (dropped first if
    it exists); returns its first capture set. ``DATABASE_URL`` must already name ``url``."""
    import tempfile

    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    from taxopost.django_setup import setup

    setup()
    from taxopost import demo
    from taxopost.observations.models import CaptureSet

    class Quiet:  # the demo's progress bar, silent
        def update(self, **kwargs) -> None:
            pass

        def __call__(self, n) -> None:
            pass

    print("loading the demo project into PostgreSQL ...", flush=True)
    demo.ensure_demo_project(Path(tempfile.mkdtemp(prefix=prefix)), Quiet())
    return CaptureSet.objects.get(name=demo.CAPTURE_SETS[0])


def median_seconds(function: Callable[[], object], repeats: int = 5) -> float:
    """Median wall time of ``repeats`` calls (the machine is shared: medians, not minima or means)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ami_category_map() -> CategoryMap:
    """The AMI North-East America moth classifier's 2,497 classes, resolved through GBIF keys."""
    ami = SHARED_DATA / "ami"
    if not ami.exists():
        sys.exit(f"benchmark needs the AMI label space in {ami} (set TAXOPOST_SHARED_DATA)")
    with open(ami / "taxonomy_map.csv", newline="") as handle:
        rows = csv.DictReader(handle)
        taxonomy = Taxonomy.from_lineages(rows, ["species", "genus", "family"], id_column="speciesKey")
    index = json.loads((ami / "ne-america_category_map.json").read_text())
    labels = sorted(index, key=index.__getitem__)
    return CategoryMap(labels, taxonomy)


def import_ami() -> CategoryMap:
    """Import the AMI taxonomy and label space as the classifier ``ami-ne-america``; returns the label space."""
    from taxopost.ml.operations import get_or_create_algorithm, import_category_map
    from taxopost.taxa.operations import import_taxonomy

    core_map = ami_category_map()
    import_taxonomy(core_map.taxonomy)
    category_map, _ = import_category_map(list(core_map.labels))
    get_or_create_algorithm("ami-ne-america", category_map=category_map)
    return core_map


def load(n: int, name: str, core_map, outputs_cache: dict, *, per_occurrence: int = 1) -> int:
    """A capture set of ``n`` detections, one model classification each; returns its id.

    Detections come in occurrences of ``per_occurrence`` (consecutive images; a block of 5,000
    never splits one when it divides 5,000).

    Scores are simulated over ``core_map`` (the AMI label space), already imported with its
    algorithm ``ami-ne-america``. The planner's statistics are refreshed afterwards, as the
    importers do (without, the plan of a job that follows may misjudge the tables' sizes by
    6x and take seconds). Needs Django set up.
    """
    from django.db import transaction

    from taxopost.core.simulate import simulate_outputs
    from taxopost.ml.models import Algorithm, CategoryMap
    from taxopost.observations.models import (
        CaptureSet,
        Classification,
        Detection,
        Occurrence,
        Project,
        SourceImage,
    )  # fmt: skip
    from taxopost.observations.predictions import refresh_statistics
    from taxopost.observations.vectors import rows_to_bytes
    from taxopost.taxa.operations import load_taxonomy

    taxonomy = load_taxonomy()
    algorithm = Algorithm.objects.get(key="ami-ne-america")
    category_map = CategoryMap.objects.get(pk=algorithm.category_map_id)
    project, _ = Project.objects.get_or_create(name="bench")
    capture_set = CaptureSet.objects.create(project=project, name=name)
    block = 5000
    for start in range(0, n, block):
        size = min(block, n - start)
        if size not in outputs_cache:
            outputs_cache[size] = simulate_outputs(core_map, size, seed=11).scores()
        scores = outputs_cache[size]
        with transaction.atomic():
            images = SourceImage.objects.bulk_create(
                [
                    SourceImage(project=project, path=f"{name}/{start + i}.jpg", width=4096, height=2160)
                    for i in range(size)
                ]
            )
            capture_set.images.add(*images)
            occurrences = Occurrence.objects.bulk_create(
                [Occurrence(project=project, key=f"{name}-{start + i}") for i in range(0, size, per_occurrence)]
            )
            detections = Detection.objects.bulk_create(
                [
                    Detection(
                        source_image=image, key="d", bbox=[0, 0, 300, 300], occurrence=occurrences[i // per_occurrence]
                    )
                    for i, image in enumerate(images)
                ]
            )
            winners = scores.argmax(axis=1)
            taxa = taxonomy.db_ids[core_map.class_taxa[winners]]
            Classification.objects.bulk_create(
                [
                    Classification(
                        detection=detection, taxon_id=int(taxa[i]), score=float(scores[i, winners[i]]),
                        scores=blob, category_map=category_map, algorithm=algorithm,
                    )
                    for i, (detection, blob) in enumerate(zip(detections, rows_to_bytes(scores), strict=True))
                ],
                batch_size=1000,
            )  # fmt: skip
    refresh_statistics()  # as the importers do after a bulk load
    return capture_set.pk


def run_job(task: str, capture_set_id: int, config: dict | None = None):
    """Run ``task`` on a capture set as a job in this process; exit naming the task if it fails."""
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor
    from taxopost.postprocessing.running.operations import create_job

    job = create_job(task, Job.CAPTURE_SET, capture_set_id, config or {})
    EmbeddedExecutor().submit(job)
    if job.status != Job.SUCCEEDED:
        sys.exit(f"{task} job failed: {job.error}")
    return job
