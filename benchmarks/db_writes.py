"""The platform's writes on PostgreSQL: class masking and rank roll-up jobs against reading the vectors.

One capture set of N classifications with 2,497-class score vectors (the AMI label space,
simulated outputs). In the same run it times (medians of --repeats, each job reverted before
the next):

- the floor: one query that reads every score vector of the scope;
- a class-masking job to a real regional checklist (Barro Colorado Island's, which keeps 19 of
  the 2,497 classes), which rewrites nearly every row: its mostly-zero vectors are stored
  sparse (target >= 5,000 classifications/s);
- for contrast, masking to half the label space's families (vectors stay dense, 10 KB a row);
- a rank roll-up job (target: within 2x of the floor);
- the coverage check a masking job's creation runs (a sample of at most 5,000 vectors), against
  the masking job it precedes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/taxopost .venv/bin/python benchmarks/db_writes.py
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


from _common import SHARED_DATA, benchmark_database, import_ami, load, run_job  # noqa: E402
from taxopost.io import read_taxa_list  # noqa: E402
from taxopost.jobs.models import Job  # noqa: E402
from taxopost.observations.models import CaptureSet, Classification  # noqa: E402
from taxopost.postprocessing.running.operations import task_warnings  # noqa: E402
from taxopost.postprocessing.running.revert import revert_job  # noqa: E402
from taxopost.taxa.models import Taxon  # noqa: E402
from taxopost.taxa.operations import import_taxa_list, load_taxonomy  # noqa: E402


def read_vectors(capture_set: int) -> int:
    """The floor: every score vector of the scope in one query, as a job's chunks read them."""
    detections = CaptureSet.detections_of(capture_set)
    rows = Classification.objects.filter(terminal=True, detection__in=detections).values_list("id", "scores")
    return sum(len(blob) for _, blob in rows.iterator(chunk_size=2000))


def timed(function, repeats: int, after=None) -> tuple[float, list[float], object]:
    seconds, result = [], None
    for repeat in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
        if after is not None and repeat < repeats - 1:
            after(result)
    return statistics.median(seconds), seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with benchmark_database():
        core_map = import_ami()
        cache: dict = {}
        warm_up = load(500, "set-warm-up", core_map, cache)
        scope = load(args.rows, "set-timed", core_map, cache)
        families = sorted(Taxon.objects.filter(rank="family").values_list("id", flat=True))
        import_taxa_list("half the families", families[::2])
        taxonomy = load_taxonomy()
        bci = read_taxa_list(SHARED_DATA / "ami" / "bci_lepidoptera_checklist.csv", taxonomy.core,
                             column="Current_valid_binomen")  # fmt: skip
        import_taxa_list("BCI", [int(taxonomy.db_ids[t]) for t in bci.taxa])
        regional, dense = {"taxa_list": "BCI"}, {"taxa_list": "half the families"}
        run_job("class_masking", warm_up, regional)
        run_job("rank_rollup", warm_up, {})

        read, read_runs, _ = timed(lambda: read_vectors(scope), args.repeats)
        mask, mask_runs, job = timed(lambda: run_job("class_masking", scope, regional), args.repeats, revert_job)
        changed = job.metrics["changed"]
        revert_job(job)
        check, check_runs, warnings = timed(
            lambda: task_warnings("class_masking", Job.CAPTURE_SET, scope, regional), args.repeats
        )
        half, half_runs, half_job = timed(lambda: run_job("class_masking", scope, dense), args.repeats, revert_job)
        half_changed = half_job.metrics["changed"]
        revert_job(half_job)
        rollup, rollup_runs, rolled = timed(lambda: run_job("rank_rollup", scope, {}), args.repeats, revert_job)
        n = args.rows

        def rates(runs: list[float]) -> str:
            return ", ".join(f"{n / t:,.0f}" for t in runs)

        print(f"read every vector (one query): median {read:.2f} s, {n / read:,.0f}/s ({rates(read_runs)})")
        print(
            f"class masking to the BCI checklist ({len(bci.taxa)} taxa): median {mask:.2f} s, "
            f"{n / mask:,.0f} classifications/s ({rates(mask_runs)}); {changed:,} rewritten, stored sparse; "
            "target >= 5,000/s"
        )
        [warning] = warnings
        print(
            f"coverage check (BCI): median {check:.2f} s ({', '.join(f'{t:.2f}' for t in check_runs)}) on "
            f"{warning['rows']:,} of {n:,} vectors, {check / mask:.0%} of the masking job; it keeps "
            f"{warning['kept_classes']} of {warning['n_classes']:,} classes, {warning['kept_mass']:.1%} of the mass"
        )
        print(
            f"class masking to half the families: median {half:.2f} s, {n / half:,.0f} classifications/s "
            f"({rates(half_runs)}); {half_changed:,} rewritten with dense 10 KB vectors"
        )
        print(
            f"rank roll-up job: median {rollup:.2f} s, {n / rollup:,.0f} classifications/s ({rates(rollup_runs)}); "
            f"{rolled.metrics['changed']:,} rolled up; {rollup / read:.2f}x the read (target <= 2x)"
        )


if __name__ == "__main__":
    main()
