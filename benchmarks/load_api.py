"""Load on the API served by gunicorn while a roll-up job runs on PostgreSQL.

20 concurrent clients for 30 seconds read occurrence pages and poll the job, over loopback,
while the demo's rank roll-up job (10,000 classifications with 1,224-class vectors) runs.
Prints requests/s, p50/p95 latency and errors (targets: zero errors, p95 under 300 ms), then
reverts the job, runs it again without load and checks the result is identical.

    .venv/bin/python benchmarks/load_api.py [--clients 20] [--seconds 30]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATABASE = os.environ.get("TAXOPOST_LOAD_DATABASE", "postgres://postgres@127.0.0.1:5432/taxopost_load")
os.environ["DATABASE_URL"] = DATABASE
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taxopost.settings")

from benchmarks._common import demo_on_fresh_postgres  # noqa: E402
from tests.loadtools import celery_worker, gunicorn, run_clients, start_job, wait_for_job  # noqa: E402

BROKER = os.environ.get("TAXOPOST_LOAD_BROKER", "redis://127.0.0.1:6379/7")


def snapshot(job_id: int) -> set[tuple]:
    from taxopost.observations.models import Classification

    rows = Classification.objects.filter(job_id=job_id).values_list(
        "detection_id", "taxon_id", "score", "applied_to_id"
    )
    return {(d, t, round(s, 6), a) for d, t, s, a in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument(
        "--executor",
        choices=("celery", "embedded"),
        default="celery",
        help="celery: the job runs on a worker process (a production setup); embedded: on a thread of a web worker",
    )
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    args = parser.parse_args()

    capture_set = demo_on_fresh_postgres(DATABASE, "taxopost-load-")
    from django.contrib.auth import get_user_model

    from taxopost import demo
    from taxopost.access.tokens import create_token
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor
    from taxopost.postprocessing.running.operations import create_job
    from taxopost.postprocessing.running.revert import revert_job

    user = get_user_model().objects.get(username=demo.DEMO_USER)
    token = create_token(user, name="load benchmark")[1]
    config = {"thresholds": {"species": 0.8, "genus": 0.6, "family": 0.4}}

    celery = args.executor == "celery"
    with (
        celery_worker(DATABASE, BROKER) if celery else contextlib.nullcontext(),
        gunicorn(
            DATABASE,
            workers=args.workers,
            threads=args.threads,
            env={"TAXOPOST_BROKER_URL": BROKER} if celery else None,
        ) as port,
    ):
        job_id = start_job(port, token, capture_set.pk, config)
        load = run_clients(
            port, token, clients=args.clients, seconds=args.seconds, capture_set=capture_set.pk, job=job_id
        )
        state = wait_for_job(port, token, job_id)
    under_load = snapshot(job_id)

    revert_job(Job.objects.get(pk=job_id))
    quiet = create_job("rank_rollup", Job.CAPTURE_SET, capture_set.pk, config)
    EmbeddedExecutor().submit(quiet)
    same = snapshot(quiet.pk) == under_load

    where = "a Celery worker process" if celery else "a thread of a web worker"
    server = f"gunicorn ({args.workers} workers x {args.threads} threads)"
    print(f"{args.clients} clients for {args.seconds:g} s against {server} on loopback;")
    print(f"the job runs on {where}")
    print(f"  requests: {load['requests']:,}  ({load['requests_per_second']:,.0f}/s)")
    print(f"  latency: p50 {load['p50_ms']:.0f} ms, p95 {load['p95_ms']:.0f} ms  (target p95 < 300 ms)")
    for kind, part in load["by_kind"].items():
        print(f"    {kind}: {part['requests']:,} requests, p50 {part['p50_ms']:.0f} ms, p95 {part['p95_ms']:.0f} ms")
    print(f"  errors: {load['errors']}  (target 0) {load['first_errors'] or ''}")
    print(f"  roll-up job under load: {state['status']}, {state['metrics'].get('changed', 0):,} rolled up of "
          f"{state['metrics'].get('examined', 0):,}; result without load identical: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
