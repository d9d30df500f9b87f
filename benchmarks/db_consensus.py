"""Occurrence consensus as a job on PostgreSQL, against the rank roll-up job in the same run.

A capture set of N classifications with 2,497-class score vectors (the AMI label space,
simulated outputs) in occurrences of 4 detections. Each job runs whole (plan, read, compute,
write, determinations) in the embedded executor, alternately, ``--repeats`` times each,
reverted in between, so that both meet the same busy moments of a shared machine. Prints
classifications/s of both (examined: the capture set's size over the job's time) and their
ratio, then the rate of classifications written. Target: the consensus job at no fewer
classifications per second than the roll-up job.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/taxopost .venv/bin/python benchmarks/db_consensus.py
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

TASKS = ("rank_rollup", "occurrence_consensus")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with benchmark_database():
        core_map = import_ami()
        cache: dict = {}
        start = time.perf_counter()
        warm_up = load(500, "set-warm-up", core_map, cache, per_occurrence=4)
        timed = load(args.rows, "set-timed", core_map, cache, per_occurrence=4)
        print(f"loaded {args.rows + 500:,} classifications in {time.perf_counter() - start:.0f} s")
        for task in TASKS:  # compiles the kernels for this input once
            run_job(task, warm_up)
        timings: dict[str, list[float]] = {task: [] for task in TASKS}
        changed = {}
        for _ in range(args.repeats):
            for task in TASKS:
                start = time.perf_counter()
                job = run_job(task, timed)
                timings[task].append(time.perf_counter() - start)
                changed[task] = job.metrics["changed"]
                revert_job(job)
        rates = {task: args.rows / statistics.median(times) for task, times in timings.items()}
        for task in TASKS:
            runs = ", ".join(f"{args.rows / t:,.0f}" for t in timings[task])
            print(
                f"{task}: median {rates[task]:,.0f} classifications/s over {args.repeats} runs ({runs}); "
                f"{changed[task]:,} written"
            )
        ratio = rates["occurrence_consensus"] / rates["rank_rollup"]
        print(f"consensus / roll-up: {ratio:.2f}x (target >= 1)")
        # The consensus writes a row (and a vector) for every detection it combines, the roll-up
        # only for those it changes: the rate of rows written, for comparison.
        written = {task: changed[task] / statistics.median(timings[task]) for task in TASKS}
        print(
            f"written: {written['occurrence_consensus']:,.0f} against {written['rank_rollup']:,.0f} classifications/s "
            f"({written['occurrence_consensus'] / written['rank_rollup']:.2f}x)"
        )


if __name__ == "__main__":
    main()
