"""Celery scale-out: the same 50,000-classification roll-up on 1 worker process, then on 2.

One capture set of N classifications with 2,497-class score vectors (the AMI label space,
simulated outputs). Each configuration starts `taxopost worker --concurrency P`, warms it up
on a small job (the core's kernels load in each process), then times the roll-up of the set
from claim to finish (the job's own timestamps). Every run starts from the same state: the
previous run is reverted and the database vacuumed, so no run pays for the last one's dead
rows. Runs alternate between the configurations (--repeats rounds); prints the median
classifications/s of 1 and 2 processes and the speed-up measured in the same run (target
>= 1.6x with 2 processes on a 2-core machine), and the embedded executor for reference.

PostgreSQL runs on the same machine and shares its cores: run it on an otherwise idle machine.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/taxopost_celery \\
    TAXOPOST_BROKER_URL=redis://127.0.0.1:6379/5 .venv/bin/python benchmarks/celery_scale.py
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/taxopost_celery")
os.environ.setdefault("TAXOPOST_TEST_DATABASE", "test_taxopost_scale_celery")
os.environ.setdefault("TAXOPOST_BROKER_URL", "redis://127.0.0.1:6379/5")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taxopost.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from _common import import_ami, load  # noqa: E402

BIN = Path(sys.executable).parent


@contextmanager
def worker(concurrency: int, folder: Path):
    """A `taxopost worker` on the benchmark's database, killed (with its pool) on exit."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "TAXOPOST_DATA_DIR": str(folder),
    }
    log = folder / f"worker-{concurrency}.log"
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [str(BIN / "taxopost"), "worker", f"--concurrency={concurrency}", "--loglevel=info"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            if time.monotonic() > deadline or process.poll() is not None:
                sys.exit(f"the worker did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run(capture_set_id: int, executor, *, chunk_size: int) -> tuple[float, dict]:
    """Run the roll-up on the set, then revert it and vacuum; returns (seconds from claim to finish, metrics)."""
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.running.operations import create_job, submit_job
    from taxopost.postprocessing.running.revert import revert_job

    job = create_job("rank_rollup", Job.CAPTURE_SET, capture_set_id, {}, chunk_size=chunk_size)
    submit_job(job, executor)
    while not job.is_finished:
        time.sleep(0.05)
        job.refresh_from_db()
    if job.status != Job.SUCCEEDED:
        sys.exit(f"job {job.pk} {job.status}: {job.error}")
    revert_job(job)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return (job.finished_at - job.started_at).total_seconds(), job.metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each configuration (median)")
    args = parser.parse_args()

    import redis

    from taxopost.celery import app
    from taxopost.postprocessing.running.celery_jobs import CeleryExecutor
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor

    broker = os.environ["TAXOPOST_BROKER_URL"]
    redis.Redis.from_url(broker).flushdb()
    app.conf.broker_url = broker
    print(f"database: {connection.vendor} ({os.environ['DATABASE_URL'].rsplit('@', 1)[-1]}), broker: {broker}")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        core_map = import_ami()
        cache: dict = {}
        start = time.perf_counter()
        timed = load(args.rows, "set-timed", core_map, cache)
        warm_up = load(2 * args.chunk_size, "set-warm-up", core_map, cache)
        print(f"loaded {args.rows + 2 * args.chunk_size:,} classifications in {time.perf_counter() - start:.0f} s")

        options = {"chunk_size": args.chunk_size}
        run(warm_up, EmbeddedExecutor(), **options)
        seconds: dict[str, list[float]] = {"embedded": [], "1": [], "2": []}
        seconds["embedded"].append(run(timed, EmbeddedExecutor(), **options)[0])
        metrics = {}
        with tempfile.TemporaryDirectory(prefix="taxopost-scale-") as folder:
            for _ in range(args.repeats):
                for processes in ("1", "2"):
                    with worker(int(processes), Path(folder)):
                        run(warm_up, CeleryExecutor(), **options)
                        elapsed, metrics[processes] = run(timed, CeleryExecutor(), **options)
                        seconds[processes].append(elapsed)
        if metrics["1"] != metrics["2"]:
            sys.exit("the runs on 1 and 2 processes disagree")

        median = {name: statistics.median(values) for name, values in seconds.items()}
        chunks = -(-args.rows // args.chunk_size)
        changed = metrics["1"]["changed"]
        print(f"rank roll-up of {args.rows:,} classifications ({changed:,} rolled up) in ~{chunks} chunks:")
        labels = {
            "embedded": "embedded executor (in-process)",
            "1": "Celery, 1 worker process",
            "2": "Celery, 2 processes",
        }
        for name, label in labels.items():
            runs = ", ".join(f"{value:.1f}" for value in seconds[name])
            print(f"  {label:31s} {args.rows / median[name]:7,.0f} classifications/s  (median of {runs} s)")
        speed_up = median["1"] / median["2"]
        print(f"speed-up of 2 processes over 1: {speed_up:.2f}x (target >= 1.6x; {os.cpu_count()} cores)")
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
