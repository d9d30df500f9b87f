"""Re-tuning a roll-up on PostgreSQL: a re-run that replaces the earlier outputs, against a first run.

A capture set of N classifications with 2,497-class score vectors (the AMI label space, simulated
outputs). Each repeat runs the roll-up with the stricter thresholds on the model's outputs (the
baseline: the same work as a first run), reverts it, runs the default thresholds, then the
stricter ones again: that re-run starts from the same sources, writes what the baseline wrote,
and also replaces the default run's outputs. Both are then reverted. Prints the median seconds of
each, the re-run's ratio to the baseline, and the seconds of planning each (the re-run's plan
walks the chains in the database). Target: the re-run within 1.5x of the baseline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/taxopost .venv/bin/python benchmarks/db_rerun.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/taxopost")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taxopost.settings")

import django

django.setup()


from _common import benchmark_database, import_ami, load, run_job  # noqa: E402
from taxopost.postprocessing.running.revert import revert_job  # noqa: E402

DEFAULT = {"thresholds": {"species": 0.8, "genus": 0.6, "family": 0.4}}
STRICT = {"thresholds": {"species": 0.9, "genus": 0.75, "family": 0.5}}


def planning_seconds(capture_set: int, config: dict) -> float:
    """Seconds to prepare the task and list its inputs (what a job's claim does), writing nothing."""
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.base import Scope
    from taxopost.postprocessing.registry import get_task
    from taxopost.tasks import parse_config

    task_class = get_task("rank_rollup")
    start = time.perf_counter()
    task = task_class(parse_config(task_class.config_model, config), Scope(Job.CAPTURE_SET, capture_set))
    task.prepare()
    count = len(task.select().values_list("id", flat=True))
    assert count > 0
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with benchmark_database():
        core_map = import_ami()
        cache: dict = {}
        warm_up = load(500, "set-warm-up", core_map, cache)
        timed = load(args.rows, "set-timed", core_map, cache)
        run_job("rank_rollup", warm_up, DEFAULT)  # compiles the kernels, stores both algorithms
        run_job("rank_rollup", warm_up, STRICT)
        baselines, reruns, plans_first, plans_rerun = [], [], [], []
        for _ in range(args.repeats):
            plans_first.append(planning_seconds(timed, STRICT))
            start = time.perf_counter()
            baseline = run_job("rank_rollup", timed, STRICT)
            baselines.append(time.perf_counter() - start)
            revert_job(baseline)
            first = run_job("rank_rollup", timed, DEFAULT)
            plans_rerun.append(planning_seconds(timed, STRICT))
            start = time.perf_counter()
            rerun = run_job("rank_rollup", timed, STRICT)
            reruns.append(time.perf_counter() - start)
            revert_job(rerun)
            revert_job(first)
        a, b = statistics.median(baselines), statistics.median(reruns)
        replaced = sum(rerun.metrics["replaced"].values())
        print(
            f"strict thresholds on the model's {args.rows:,} outputs: median {a:.2f} s "
            f"({', '.join(f'{t:.2f}' for t in baselines)}); {baseline.metrics['changed']:,} written"
        )
        print(
            f"the same after the default thresholds (a re-run): median {b:.2f} s "
            f"({', '.join(f'{t:.2f}' for t in reruns)}); "
            f"{rerun.metrics['examined']:,} examined, {replaced:,} replaced, {rerun.metrics['changed']:,} written, "
            f"{rerun.metrics['restored']:,} restored"
        )
        print(f"re-run / baseline: {b / a:.2f}x (target <= 1.5x)")
        print(
            f"planning (listing the inputs): on the model's outputs {statistics.median(plans_first):.3f} s, "
            f"for the re-run {statistics.median(plans_rerun):.3f} s"
        )


if __name__ == "__main__":
    main()
