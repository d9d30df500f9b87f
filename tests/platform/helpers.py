"""Small helpers the platform tests share."""

from __future__ import annotations

from taxopost.jobs.models import Job
from taxopost.observations.models import Classification, Occurrence
from taxopost.postprocessing.running.embedded import EmbeddedExecutor
from taxopost.postprocessing.running.operations import create_job, submit_job


def run(
    task: str,
    capture_set,
    config: dict | None = None,
    *,
    dry_run: bool = False,
    stack: bool = False,
    chunk_size: int | None = None,
) -> Job:
    job = create_job(
        task, Job.CAPTURE_SET, capture_set.pk, config or {}, dry_run=dry_run, stack=stack, chunk_size=chunk_size
    )
    submit_job(job, EmbeddedExecutor())
    job.refresh_from_db()
    assert job.status == Job.SUCCEEDED, (job.status, job.error)
    return job


def terminal(occurrence_key: str) -> list[Classification]:
    return list(
        Classification.objects.filter(detection__occurrence__key=occurrence_key, terminal=True).select_related(
            "taxon", "algorithm"
        )
    )


def determination(occurrence_key: str) -> str | None:
    occurrence = Occurrence.objects.select_related("determination").get(key=occurrence_key)
    return occurrence.determination.name if occurrence.determination else None


def chain(classification: Classification) -> list[str]:
    """Algorithm keys from this classification down to the model output."""
    keys = []
    node = classification
    while node is not None:
        keys.append(node.algorithm.key)
        node = node.applied_to
    return keys


def snapshot() -> set[tuple]:
    """The full set of classifications: detection, taxon, applied_to chain by content, terminal, replaced."""
    rows = {c.pk: c for c in Classification.objects.select_related("taxon", "algorithm")}

    def describe(pk):
        c = rows[pk]
        below = describe(c.applied_to_id) if c.applied_to_id else None
        return (c.detection_id, c.taxon.name, c.algorithm.key, round(c.score, 6), below)

    return {(describe(pk), rows[pk].terminal, rows[pk].replaced_by_id is not None) for pk in rows}
