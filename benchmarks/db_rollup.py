"""Rank roll-up end to end through a job on PostgreSQL (read, compute, write, determinations).

A capture set of N classifications with 2,497-class score vectors (the AMI label space,
simulated outputs). Prints classifications/s, queries per chunk, peak memory, and in the same
run the ratio against a straightforward per-row ORM implementation of the same rule (iterate,
compute, save each; timed on a subset). Memory is measured at N/4 and N rows: it must stay flat.
Targets: >= 20x the per-row implementation, >= 5,000 classifications/s, 4x rows < 1.3x memory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/taxopost .venv/bin/python benchmarks/db_rollup.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
from collections import defaultdict

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/taxopost")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taxopost.settings")

import django

django.setup()

import numpy as np  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from _common import benchmark_database, import_ami, load, run_job  # noqa: E402
from taxopost.postprocessing.running.revert import revert_job  # noqa: E402


def per_row_orm(capture_set_id: int, limit: int) -> int:
    """The same rule, the straightforward way: one classification at a time through the ORM.

    Lineages come from one preloaded dict (kinder than a query per class); each row is read,
    aggregated with a dict per rank, and saved on its own with its occurrence.
    """
    from taxopost.ml.models import Algorithm
    from taxopost.observations.models import Classification, Occurrence
    from taxopost.taxa.models import Taxon

    thresholds = {"species": 0.8, "genus": 0.6, "family": 0.4}
    lineage = {pk: (rank, parent) for pk, rank, parent in Taxon.objects.values_list("id", "rank", "parent_id")}
    algorithm, _ = Algorithm.objects.get_or_create(
        key="per-row-rollup", defaults={"name": "per-row", "task_type": "rank_rollup"}
    )
    done = 0
    queryset = Classification.objects.filter(
        terminal=True, detection__source_image__capture_sets__id=capture_set_id
    ).select_related("category_map", "detection")[:limit]
    for classification in queryset:
        scores = np.frombuffer(classification.scores, dtype="<f4").tolist()
        class_taxa = classification.category_map.taxa
        aggregates: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for taxon, score in zip(class_taxa, scores, strict=True):
            while taxon is not None:
                rank, parent = lineage[taxon]
                if rank in thresholds:
                    aggregates[rank][taxon] += score
                taxon = parent
        chosen, node = None, classification.taxon_id
        ancestors = {}
        while node is not None:
            ancestors[lineage[node][0]] = node
            node = lineage[node][1]
        for rank in ("species", "genus", "family"):
            candidate = ancestors.get(rank)
            if candidate is not None and aggregates[rank].get(candidate, 0.0) >= thresholds[rank]:
                chosen = (candidate, aggregates[rank][candidate])
                break
        if chosen and chosen[0] != classification.taxon_id:
            with transaction.atomic():
                new = Classification.objects.create(
                    detection=classification.detection, taxon_id=chosen[0], score=chosen[1], algorithm=algorithm,
                    applied_to=classification,
                )  # fmt: skip
                classification.terminal = False
                classification.save()
                occurrence = Occurrence.objects.get(pk=classification.detection.occurrence_id)
                occurrence.determination_id, occurrence.determination_score = new.taxon_id, new.score
                occurrence.determined_by = new
                occurrence.save()
        done += 1
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--orm-rows", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (each reverted before the next)")
    args = parser.parse_args()

    with benchmark_database():
        core_map = import_ami()
        cache: dict = {}
        small, large = args.rows // 4, args.rows
        start = time.perf_counter()
        warm_up = load(500, "set-warm-up", core_map, cache)
        timed = load(large, "set-timed", core_map, cache)
        sets = {n: load(n, f"set-memory-{n}", core_map, cache) for n in (small, large)}
        baseline_set = load(args.orm_rows, "set-orm", core_map, cache)
        print(
            f"loaded {500 + 2 * large + small + args.orm_rows:,} classifications in {time.perf_counter() - start:.0f} s"
        )

        run_job("rank_rollup", warm_up)  # compiles the core's kernels for this input type once
        timings = []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            job = run_job("rank_rollup", timed)
            timings.append(time.perf_counter() - start)
            if repeat < args.repeats - 1:
                revert_job(job)  # the next run does the same work on the same sources
        seconds = statistics.median(timings)
        peaks = {}
        for n, capture_set in sets.items():  # tracemalloc slows Python: memory runs are not timed
            tracemalloc.start()
            run_job("rank_rollup", capture_set)
            peaks[n] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()

        # queries per chunk: one whole chunk step (begin, read, write, progress) of a job on a new set
        from taxopost.jobs.models import Job, JobChunk
        from taxopost.postprocessing.running.chunk import run_chunk
        from taxopost.postprocessing.running.lifecycle import claim, finish
        from taxopost.postprocessing.running.operations import create_job
        from taxopost.postprocessing.tasks.rank_rollup import RankRollupTask

        CHUNK = RankRollupTask.chunk_size
        probe = load(CHUNK, "set-probe", core_map, cache)
        probe_job = create_job("rank_rollup", Job.CAPTURE_SET, probe, {})
        claimed = claim(probe_job.pk, "embedded")
        with CaptureQueriesContext(connection) as queries:
            run_chunk(JobChunk.objects.get(job=probe_job).pk, task=claimed.task)
        finish(probe_job.pk)

        start = time.perf_counter()
        done = per_row_orm(baseline_set, args.orm_rows)
        orm_per_row = (time.perf_counter() - start) / done
        ours_per_row = seconds / large
        rates = ", ".join(f"{large / t:,.0f}" for t in timings)
        print(
            f"rank roll-up job on {large:,} classifications: median {seconds:.1f} s, {large / seconds:,.0f} "
            f"classifications/s over {len(timings)} runs ({rates}); {job.metrics['changed']:,} rolled up; "
            "target >= 5,000/s"
        )
        print(f"queries per chunk of {CHUNK}: {len(queries)}")
        print(
            f"peak traced memory: {peaks[small]:.0f} MiB at {small:,} rows, {peaks[large]:.0f} MiB at {large:,} rows "
            f"({peaks[large] / peaks[small]:.2f}x at 4x the rows; target < 1.3x)"
        )
        print(
            f"per-row ORM implementation: {1 / orm_per_row:,.0f} classifications/s on {done} rows; "
            f"the job is {orm_per_row / ours_per_row:,.0f}x faster (target >= 20x)"
        )


if __name__ == "__main__":
    main()
