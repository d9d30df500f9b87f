"""Undo one job: delete what it created, restore what it demoted or replaced, recompute determinations."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from taxopost.errors import InputError
from taxopost.jobs.models import Job
from taxopost.observations.chains import settle_terminal
from taxopost.observations.determinations import recompute_determinations
from taxopost.observations.models import Classification


def revert_job(job: Job) -> dict:
    """Revert ``job`` in one transaction; refused (InputError) when a later job built on its output
    or replaced it.

    The earlier outputs it replaced are back in their chains, and every classification it
    touched is terminal again exactly when nothing live derives from it
    (:func:`~taxopost.observations.chains.settle_terminal`).

    The job's row is locked first: a chunk of it still in flight (its worker was only slow when
    the job was reaped) commits under the same lock and writes nothing once the job is no longer
    running. Its classifications are locked before the check for later jobs, so a later job's
    chunk cannot build on them between the check and the delete.
    """
    with transaction.atomic():
        list(Job.objects.select_for_update(no_key=True).filter(pk=job.pk).values_list("pk"))
        job.refresh_from_db()
        if job.dry_run:
            raise InputError("job", job.pk, "a dry run wrote nothing: there is nothing to revert")
        if job.reverted_at is not None:
            raise InputError("job", job.pk, f"already reverted at {job.reverted_at:%Y-%m-%d %H:%M:%S}")
        if job.status in (Job.CREATED, Job.QUEUED, Job.RUNNING):
            raise InputError("job", job.pk, f"is {job.status}: cancel it first, then revert")
        created = Classification.objects.select_for_update().filter(job=job)
        list(created.values_list("id"))  # locked: a later job's chunk locks its sources before writing
        replacers = sorted(set(created.exclude(replaced_by=None).values_list("replaced_by_id", flat=True)))
        if replacers:
            jobs = ", ".join(str(j) for j in replacers)
            raise InputError(
                "job", job.pk, f"job {jobs} replaced its output by running its task again: revert that first"
            )
        built_on = Classification.objects.filter(applied_to__job=job).exclude(job=job).values_list("job_id", flat=True)
        later = sorted({j for j in built_on if j is not None})
        if later or created.filter(terminal=False).exists():
            jobs = ", ".join(str(j) for j in later) or "another job"
            raise InputError("job", job.pk, f"job {jobs} built on its output: revert that first")
        rows = list(created.values_list("id", "applied_to_id", "detection__occurrence_id"))
        sources = [source for _, source, _ in rows if source is not None]
        replaced = Classification.objects.select_for_update().filter(replaced_by=job)
        brought_back = list(replaced.values_list("id", "applied_to_id", "detection__occurrence_id"))
        _refuse_a_second_answer(job, {parent for _, parent, _ in brought_back if parent is not None})
        created.delete()
        replaced.update(replaced_by=None)
        settle_terminal([*sources, *(pk for pk, _, _ in brought_back), *(p for _, p, _ in brought_back if p)])
        occurrences = {occurrence for *_, occurrence in rows} | {occurrence for *_, occurrence in brought_back}
        changed = recompute_determinations(occurrences, job=job)
        job.reverted_at = timezone.now()
        summary = {"removed": len(rows), "restored": len(sources), "unreplaced": len(brought_back)}
        job.result = {**job.result, "reverted": summary}
        job.save(update_fields=["reverted_at", "result"])
        job.log(
            f"reverted: removed {len(rows)} classifications, restored {len(sources)}, "
            f"{len(brought_back)} outputs it had replaced back, {changed} determinations"
        )
    return {**summary, "determinations_changed": changed}


def _refuse_a_second_answer(job: Job, parents: set[int]) -> None:
    """Refuse when an output to bring back would sit beside a live one another job wrote.

    A re-run that left a source as it was made the source the current answer again, and a later
    job may have built on it; bringing the replaced output back onto that source would give its
    chain two current answers.
    """
    beside = (
        Classification.objects.filter(applied_to_id__any_of=sorted(parents), replaced_by=None)
        .exclude(job=job)
        .values_list("job_id", flat=True)
    )
    later = sorted({j for j in beside if j is not None})
    if later:
        jobs = ", ".join(str(j) for j in later)
        raise InputError("job", job.pk, f"job {jobs} built on what its re-run left as it was: revert that first")
