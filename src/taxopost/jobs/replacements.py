"""What a job replaces, in words: the lines every preview and job page shows (CLI, API, admin).

A run of a task with another config replaces that task's earlier outputs in each chain, and the
outputs of later tasks built on them (see :mod:`taxopost.observations.chains`); the job's metrics
count them by (job, algorithm). This module turns the counts into sentences such as "3,318
outputs of job 5 (species 0.8, genus 0.6, family 0.4; lineage) are replaced".
"""

from __future__ import annotations

from taxopost.errors import InputError
from taxopost.jobs.models import Job
from taxopost.jobs.summary import split_key
from taxopost.ml.models import Algorithm
from taxopost.tasks import get_spec


def replacement_notes(job: Job) -> list[str]:
    """The sentences for ``job``'s metrics (its preview's, for a dry run); none when it replaces nothing."""
    metrics = job.metrics or {}
    earlier = metrics.get("replaced") or {}
    later = metrics.get("replaced_later") or {}
    now = job.dry_run or not job.is_finished
    pairs = [split_key(key) for key in (*earlier, *later)]
    jobs = {pk: task for pk, task in Job.objects.filter(pk__in={j for j, _ in pairs if j}).values_list("pk", "task")}
    names = dict(Algorithm.objects.filter(pk__in={a for _, a in pairs}).values_list("pk", "name"))
    notes = []
    for key, count in earlier.items():
        job_id, algorithm_id = split_key(key)
        notes.append(f"{_outputs(count)} of {_described(job_id, algorithm_id, jobs, names)} {_be(count, now)} replaced")
    for key, count in later.items():
        job_id, algorithm_id = split_key(key)
        task = jobs.get(job_id, "that task")
        notes.append(
            f"{_outputs(count)} of {_described(job_id, algorithm_id, jobs, names, with_task=True)} built on them "
            f"{_be(count, now)} replaced too: run {task} again after this job to apply it to the new outputs"
        )
    restored = metrics.get("restored", 0)
    if restored:
        sources = f"{restored:,} sources" if restored != 1 else "1 source"
        become = ("becomes" if restored == 1 else "become") if now else "became"
        notes.append(f"{sources} {become} the current answer again: the new config leaves them as they are")
    return notes


def _be(count: int, now: bool) -> str:
    return ("is" if count == 1 else "are") if now else ("was" if count == 1 else "were")


def _outputs(count: int) -> str:
    return "1 output" if count == 1 else f"{count:,} outputs"


def _described(job_id: int | None, algorithm_id: int, jobs: dict, names: dict, *, with_task: bool = False) -> str:
    """``job 5 (species 0.8, genus 0.6, family 0.4; lineage)``: the job, and its algorithm's name
    without the task's name when it starts with it."""
    name = names.get(algorithm_id, f"algorithm {algorithm_id}")
    task = jobs.get(job_id)
    who = f"job {job_id}" if task is not None else "a job since deleted"
    spec_name = _task_name(task)
    if spec_name and name.lower().startswith(spec_name.lower() + " ("):
        detail = name[len(spec_name) + 1 :]
        return f"{who} ({spec_name.lower()}: {detail[1:-1]})" if with_task else f"{who} {detail}"
    return f"{who} ({name})"


def _task_name(task: str | None) -> str:
    if task is None:
        return ""
    try:
        return get_spec(task).name
    except InputError:  # a task no longer registered: its algorithm's full name is shown
        return ""
