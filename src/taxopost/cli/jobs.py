"""``taxopost jobs``: list, inspect, cancel, revert, reap and resume post-processing jobs.

Also what ``taxopost run`` shares with them: following a job with a progress bar, and
printing one. Each command calls the job operation the admin and the API call too.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from taxopost.cli.app import app
from taxopost.cli.output import command_name, err, fail, out, progress_bar
from taxopost.django_setup import setup
from taxopost.errors import InputError

jobs_app = typer.Typer(help="List, inspect, cancel, revert, reap and resume post-processing jobs.")
app.add_typer(jobs_app, name="jobs")


def follow_job(job, submit) -> None:
    """Submit ``job`` with ``submit(executor)``: run it here with a progress bar, or queue it on Celery."""
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor
    from taxopost.postprocessing.running.executors import get_executor

    executor = get_executor()
    if not isinstance(executor, EmbeddedExecutor):
        submit(executor)
        err.print(f"job {job.pk} queued on the Celery broker; follow it with: taxopost jobs show {job.pk}")
        return
    try:
        with progress_bar(f"job {job.pk}: {job.task}", total=None) as bar:

            def on_progress(stage: str, done: int, total: int) -> None:
                bar.update(completed=done, total=total, description=f"job {job.pk}: {job.task} ({stage})")

            submit(EmbeddedExecutor(on_progress=on_progress))
    except KeyboardInterrupt:  # the job is recorded as failed and resumable: say how, here and now
        fail(
            f"interrupted; job {job.pk} keeps its finished chunks: "
            f"`{command_name()} jobs resume {job.pk}` runs what is left",
            code=130,
        )
        raise typer.Exit(code=130) from None
    job.refresh_from_db()
    print_job(job)
    if job.status == Job.FAILED:
        raise typer.Exit(code=2 if job.error else 1)


def print_job(job) -> None:
    from taxopost.jobs.chunks import chunk_counts
    from taxopost.jobs.replacements import replacement_notes

    metrics = job.metrics or {}
    table = Table(title=str(job), show_header=False)
    table.add_column("field")
    table.add_column("value")
    asked = " (cancel requested)" if job.cancel_requested and not job.is_finished else ""
    table.add_row("status", job.status + asked)
    if job.error:
        table.add_row("error", job.error)
    counts = chunk_counts(job.pk)
    if counts.total:
        running = f", {counts.running} running" if counts.running and not job.is_finished else ""
        table.add_row("chunks", f"{counts.total - counts.left} of {counts.total} done{running} ({job.progress:.0%})")
    if job.heartbeat_at and not job.is_finished:
        table.add_row("heartbeat", f"{job.heartbeat_at:%Y-%m-%d %H:%M:%S}")
    for key in ("examined", "changed", "restored", "superseded", "determinations_changed"):
        if key in metrics:
            estimated = " (estimated for a real run)" if job.dry_run and key == "determinations_changed" else ""
            table.add_row(key, f"{metrics[key]}{estimated}")
    notes = replacement_notes(job)
    if notes:
        table.add_row("replaces", "\n".join(notes))
    for key in ("skipped", "transitions", "to_taxa"):
        if metrics.get(key):
            table.add_row(key, ", ".join(f"{k}: {v}" for k, v in metrics[key].items()))
    for warning in (job.result or {}).get("warnings", []):
        table.add_row("warning", warning["message"])
    preview = (job.result or {}).get("preview")
    if preview and preview.get("sample"):
        rows = [
            f"{s['from']} ({s['from_rank']}) -> {s['to']} ({s['to_rank']}) {s['score']:.3f}" for s in preview["sample"]
        ]
        table.add_row("sample", "\n".join(rows[:10]))
    if job.reverted_at:
        table.add_row("reverted", f"{job.reverted_at:%Y-%m-%d %H:%M:%S}")
    out.print(table)


@jobs_app.command("list")
def jobs_list(
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many jobs, newest first.", min=1)] = 20,
    task: Annotated[str | None, typer.Option("--task", help="Only this task's jobs (e.g. rank_rollup).")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only jobs in this status (created, queued, running, ...).")
    ] = None,
    capture_set: Annotated[
        str | None, typer.Option("--capture-set", help="Only jobs on this capture set (name or id).")
    ] = None,
) -> None:
    """The most recent jobs, optionally of one task, in one status or on one capture set."""
    setup()
    from taxopost.jobs.models import Job
    from taxopost.observations.models import CaptureSet
    from taxopost.tasks import get_spec

    jobs = Job.objects.all()
    if task is not None:
        jobs = jobs.filter(task=get_spec(task, field="--task").key)
    if status is not None:
        statuses = [value for value, _ in Job.STATUSES]
        if status.lower() not in statuses:
            raise InputError("--status", status, f"must be one of {', '.join(statuses)}")
        jobs = jobs.filter(status=status.lower())
    if capture_set is not None:
        jobs = jobs.filter(scope_type=Job.CAPTURE_SET, scope_id=CaptureSet.named(capture_set).pk)
    jobs = list(jobs[:limit])
    names = dict(
        CaptureSet.objects.filter(pk__in={j.scope_id for j in jobs if j.scope_type == Job.CAPTURE_SET}).values_list(
            "pk", "name"
        )
    )
    table = Table("id", "task", "scope", "status", "progress", "changed", "created")
    for job in jobs:
        changed = (job.metrics or {}).get("changed", "")
        if job.scope_type == Job.CAPTURE_SET and job.scope_id in names:
            scope = names[job.scope_id]
        else:
            scope = f"{job.scope_type} {job.scope_id}"
        scope += " (dry run)" if job.dry_run else ""
        status_text = job.status + (" (reverted)" if job.reverted_at else "")
        table.add_row(
            str(job.pk),
            job.task,
            scope,
            status_text,
            f"{job.progress:.0%}",
            str(changed),
            f"{job.created_at:%Y-%m-%d %H:%M}",
        )
    if not jobs:
        err.print("no job matches" if (task or status or capture_set) else "no job yet")
        return
    out.print(table)


def _job(job_id: int):
    from taxopost.jobs.models import Job

    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        raise InputError("job", job_id, "no job has this id")
    return job


@jobs_app.command("show")
def jobs_show(job_id: Annotated[int, typer.Argument()]) -> None:
    """A job's status, metrics and log."""
    setup()
    job = _job(job_id)
    print_job(job)
    for entry in job.logs.all():
        out.print(f"{entry.created_at:%H:%M:%S} [{entry.level}] {entry.message}", markup=False)


@jobs_app.command("cancel")
def jobs_cancel(
    job_id: Annotated[int, typer.Argument()],
    revert: Annotated[bool, typer.Option("--revert", help="Then undo what its finished chunks wrote.")] = False,
) -> None:
    """Stop a job at its next chunk boundary; its finished chunks are kept unless --revert."""
    setup()
    from taxopost.postprocessing.running.operations import cancel_job

    job = cancel_job(_job(job_id), revert=revert)
    reverted = " and reverted" if job.reverted_at else ""
    err.print(f"job {job.pk}: {job.status}{reverted}" + (" (cancel requested)" if not job.is_finished else ""))


@jobs_app.command("resume")
def jobs_resume(job_id: Annotated[int, typer.Argument()]) -> None:
    """Run what a failed, stale or canceled job has left; its finished chunks are kept."""
    setup()
    from taxopost.postprocessing.running.operations import resume_job

    job = _job(job_id)
    follow_job(job, lambda executor: resume_job(job, executor))


@jobs_app.command("reap")
def jobs_reap(
    stale_after: Annotated[
        float | None,
        typer.Option("--stale-after", help="Seconds without heartbeat (default TAXOPOST_JOB_STALE_SECONDS, 300)."),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Resume each job reaped.")] = False,
) -> None:
    """Mark running jobs whose heartbeat stopped (their worker died) as failed and resumable.

    With --resume each goes straight back to the queue instead (it never shows as failed) and
    runs what is left: here, one after the other, or on Celery workers when a broker is set. If
    one fails here, is interrupted or is refused by the broker, those not run or sent yet are
    marked failed and resumable.
    """
    setup()
    from taxopost.jobs.models import Job
    from taxopost.postprocessing.running.lifecycle import fail as fail_job
    from taxopost.postprocessing.running.lifecycle import reap_stale_jobs
    from taxopost.postprocessing.running.operations import submit_job

    if stale_after is not None and stale_after < 0:
        raise InputError("--stale-after", stale_after, "must be zero or more seconds")

    reaped = reap_stale_jobs(stale_after=stale_after, resume=resume, automatic=False)
    for job in reaped:
        if job.status != Job.QUEUED:
            err.print(f"job {job.pk}: {job.status}: {job.error or 'canceled'}", markup=False)
    queued = [job for job in reaped if job.status == Job.QUEUED]  # every project free at once
    for n, job in enumerate(queued):
        err.print(f"job {job.pk}: stale, back in the queue", markup=False)
        try:
            follow_job(job, lambda executor, job=job: submit_job(job, executor))
        except BaseException:  # failed, interrupted or refused by the broker: the rest wait for a person
            for left in queued[n + 1 :]:
                fail_job(left.pk, f"stale; `{command_name()} jobs reap --resume` stopped before running it: "
                                  f"`{command_name()} jobs resume {left.pk}` runs what is left")  # fmt: skip
            raise
    if not reaped:
        err.print("no stale job")


@jobs_app.command("revert")
def jobs_revert(job_id: Annotated[int, typer.Argument()]) -> None:
    """Undo a job: remove its classifications, restore what it demoted, recompute determinations."""
    setup()
    from taxopost.postprocessing.running.revert import revert_job

    summary = revert_job(_job(job_id))
    back = f", {summary['unreplaced']} outputs it had replaced back" if summary["unreplaced"] else ""
    err.print(
        f"job {job_id} reverted: {summary['removed']} classifications removed, {summary['restored']} restored"
        f"{back}, {summary['determinations_changed']} determinations changed"
    )
