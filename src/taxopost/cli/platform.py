"""The platform from the command line: imports, post-processing runs, jobs, exports.

Each command parses its options, starts Django (the embedded SQLite database is created on
first use) and calls the domain operation the admin and the API call too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from taxopost.cli import app
from taxopost.cli.output import err, out, progress_bar, warn
from taxopost.django_setup import setup
from taxopost.errors import InputError

import_app = typer.Typer(help="Import taxonomies, category maps, predictions, identifications, taxa lists.")
jobs_app = typer.Typer(help="List, inspect, cancel, revert, reap and resume post-processing jobs.")
export_app = typer.Typer(help="Export results.")
app.add_typer(import_app, name="import")
app.add_typer(jobs_app, name="jobs")
app.add_typer(export_app, name="export")


# -- imports -------------------------------------------------------------------------------


@import_app.command("taxonomy")
def import_taxonomy_cmd(
    path: Annotated[Path, typer.Argument(help="Lineage CSV, iNaturalist taxonomy CSV or Darwin Core Taxon file.")],
    id_column: Annotated[str | None, typer.Option("--id-column", help="Lineage CSV column of external ids.")] = None,
) -> None:
    """Import (or extend) the taxonomy; taxa are matched by name."""
    setup()
    from taxopost.io import read_taxonomy
    from taxopost.taxa.operations import import_taxonomy

    taxonomy = read_taxonomy(path, id_column=id_column)
    with progress_bar("importing taxa", total=len(taxonomy)) as advance:
        summary = import_taxonomy(taxonomy, progress=advance)
    err.print(f"{len(taxonomy)} taxa: {summary.created} new, {summary.updated} updated, {summary.unchanged} unchanged")


@import_app.command("category-map")
def import_category_map_cmd(
    path: Annotated[
        Path, typer.Argument(help="Labels in class order (JSON list, {label: index} or [{index, label}]).")
    ],
    algorithm: Annotated[str, typer.Option("--algorithm", help="Key of the classifier these labels belong to.")],
    name: Annotated[str | None, typer.Option("--name", help="Readable name of the classifier.")] = None,
    version: Annotated[str, typer.Option("--version", help="Classifier version.")] = "",
    exclude_unresolved: Annotated[
        bool, typer.Option("--exclude-unresolved", help="Store labels that match no taxon as excluded classes.")
    ] = False,
) -> None:
    """Register a classifier and its label space, resolved against the imported taxonomy."""
    setup()
    from django.db import transaction

    from taxopost.io import read_labels
    from taxopost.ml.operations import get_or_create_algorithm, import_category_map

    labels = read_labels(path)
    with transaction.atomic():
        try:
            category_map, new_map = import_category_map(
                labels, on_unresolved="exclude" if exclude_unresolved else "error"
            )
        except InputError as exc:
            raise exc.with_source(str(path)) from None
        algo, new_algo = get_or_create_algorithm(algorithm, name=name, version=version, category_map=category_map)
    excluded = sum(t is None for t in category_map.taxa)
    if excluded:
        warn(f"{excluded} labels resolve to no taxon and are excluded")
    err.print(
        f"algorithm {algo.key}: {'registered' if new_algo else 'already registered'}; "
        f"category map of {category_map.n_classes} classes {'stored' if new_map else 'already stored'}"
    )


@import_app.command("predictions")
def import_predictions_cmd(
    path: Annotated[Path, typer.Argument(help="Predictions as JSON Lines (.jsonl) or Parquet (.parquet).")],
) -> None:
    """Import model predictions: images, detections, occurrences and classifications (idempotent)."""
    setup()
    from taxopost.observations.predictions import import_predictions

    with progress_bar("importing predictions", total=_count_records(path)) as advance:
        summary = import_predictions(path, progress=advance)
    err.print(str(summary))


@import_app.command("identifications")
def import_identifications_cmd(
    path: Annotated[Path, typer.Argument(help="CSV: taxon and occurrence (or image + detection), who, created_at.")],
    project: Annotated[str, typer.Option("--project", help="Project the occurrences belong to.")] = "default",
) -> None:
    """Import human identifications (ground truth); determinations are recomputed."""
    setup()
    from taxopost.observations.identifications import import_identifications

    err.print(str(import_identifications(path, project=project)))


@import_app.command("taxa-list")
def import_taxa_list_cmd(
    path: Annotated[Path, typer.Argument(help="One taxon name or id per line, or a CSV with --column.")],
    name: Annotated[str, typer.Option("--name", help="Name of the taxa list.")],
    column: Annotated[str | None, typer.Option("--column", help="CSV column holding the names.")] = None,
) -> None:
    """Create or replace a taxa list (a listed taxon admits its descendants)."""
    setup()
    from taxopost.io import read_taxa_list
    from taxopost.taxa.operations import import_taxa_list, load_taxonomy

    taxonomy = load_taxonomy()
    listed = read_taxa_list(path, taxonomy.core, column=column)
    if listed.unresolved:
        warn(f"{len(listed.unresolved)} entries match no taxon and are ignored: {listed.unresolved[:5]}")
    taxa_list, changed = import_taxa_list(name, [int(taxonomy.db_ids[t]) for t in listed.taxa])
    err.print(f"taxa list {taxa_list.name!r}: {len(listed.taxa)} taxa ({'saved' if changed else 'unchanged'})")


def _count_records(path: Path) -> int:
    if path.suffix.lower() == ".parquet" and path.exists():
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception:  # unreadable: the importer reports it properly
            return 0
    if path.exists():
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    return 0


# -- runs ----------------------------------------------------------------------------------


@app.command()
def run(
    task: Annotated[str, typer.Argument(help="rank_rollup, class_masking or small_size_filter.")],
    capture_set: Annotated[str | None, typer.Option("--capture-set", help="Name of the capture set.")] = None,
    occurrence: Annotated[int | None, typer.Option("--occurrence", help="Id of one occurrence.")] = None,
    config: Annotated[str | None, typer.Option("--config", help="The task config as JSON.")] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="rank_rollup: RANK=VALUE, repeatable; the ranks given replace the defaults "
            "(species=0.8 genus=0.6 family=0.4), so give every rank to try.",
        ),
    ] = None,
    order: Annotated[str | None, typer.Option("--order", help="rank_rollup: ranks fine to coarse.")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="rank_rollup: lineage or distribution.")] = None,
    taxa_list: Annotated[str | None, typer.Option("--taxa-list", help="class_masking: taxa list name.")] = None,
    source_algorithm: Annotated[
        str | None, typer.Option("--source-algorithm", help="class_masking: algorithm key.")
    ] = None,
    reweight: Annotated[bool | None, typer.Option("--reweight/--no-reweight", help="class_masking.")] = None,
    size_threshold: Annotated[float | None, typer.Option("--size-threshold", help="small_size_filter.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Compute and summarise; write nothing.")] = False,
    chunk_size: Annotated[
        int | None, typer.Option("--chunk-size", help="Classifications per chunk (default: the task's, 1000).")
    ] = None,
) -> None:
    """Run a post-processing task on a capture set or an occurrence, as a job."""
    setup()
    from taxopost.cli.files import _parse_thresholds
    from taxopost.jobs.operations import create_job, submit_job

    data = _config_object(config)
    options = {
        "thresholds": _parse_thresholds(threshold) if threshold else None,
        "order": [r.strip() for r in order.split(",")] if order else None,
        "mode": mode,
        "taxa_list": taxa_list,
        "source_algorithm": source_algorithm,
        "reweight": reweight,
        "size_threshold": size_threshold,
    }
    data.update({key: value for key, value in options.items() if value is not None})
    scope_type, scope_id = _scope(capture_set, occurrence)
    job = create_job(task, scope_type, scope_id, data, dry_run=dry_run, chunk_size=chunk_size)
    _follow(job, lambda executor: submit_job(job, executor))


def _follow(job, submit) -> None:
    """Submit ``job`` with ``submit(executor)``: run it here with a progress bar, or queue it on Celery."""
    from taxopost.jobs.executors import EmbeddedExecutor, get_executor
    from taxopost.jobs.models import Job

    executor = get_executor()
    if not isinstance(executor, EmbeddedExecutor):
        submit(executor)
        err.print(f"job {job.pk} queued on the Celery broker; follow it with: taxopost jobs show {job.pk}")
        return
    with progress_bar(f"job {job.pk}: {job.task}", total=None) as bar:

        def on_progress(stage: str, done: int, total: int) -> None:
            bar.update(completed=done, total=total, description=f"job {job.pk}: {job.task} ({stage})")

        submit(EmbeddedExecutor(on_progress=on_progress))
    job.refresh_from_db()
    _print_job(job)
    if job.status == Job.FAILED:
        raise typer.Exit(code=2 if job.error else 1)


def _scope(capture_set: str | None, occurrence: int | None) -> tuple[str, int]:
    from taxopost.jobs.models import Job
    from taxopost.observations.models import CaptureSet

    if (capture_set is None) == (occurrence is None):
        raise InputError(
            "--capture-set/--occurrence", None, "give exactly one of --capture-set NAME or --occurrence ID"
        )
    if capture_set is not None:
        found = CaptureSet.objects.filter(name=capture_set).values_list("id", flat=True).first()
        if found is None:
            raise InputError("--capture-set", capture_set, "no capture set has this name")
        return Job.CAPTURE_SET, found
    return Job.OCCURRENCE, int(occurrence)


def _print_job(job) -> None:
    from taxopost.jobs.chunks import chunk_counts

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
    for key in ("examined", "changed", "superseded", "determinations_changed"):
        if key in metrics:
            table.add_row(key, str(metrics[key]))
    for key in ("skipped", "transitions", "to_taxa"):
        if metrics.get(key):
            table.add_row(key, ", ".join(f"{k}: {v}" for k, v in metrics[key].items()))
    preview = (job.result or {}).get("preview")
    if preview and preview.get("sample"):
        rows = [
            f"{s['from']} ({s['from_rank']}) -> {s['to']} ({s['to_rank']}) {s['score']:.3f}" for s in preview["sample"]
        ]
        table.add_row("sample", "\n".join(rows[:10]))
    if job.reverted_at:
        table.add_row("reverted", f"{job.reverted_at:%Y-%m-%d %H:%M:%S}")
    out.print(table)


# -- jobs ------------------------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(limit: Annotated[int, typer.Option("--limit")] = 20) -> None:
    """The most recent jobs."""
    setup()
    from taxopost.jobs.models import Job

    table = Table("id", "task", "scope", "status", "progress", "changed", "created")
    for job in Job.objects.all()[:limit]:
        changed = (job.metrics or {}).get("changed", "")
        scope = f"{job.scope_type} {job.scope_id}" + (" (dry run)" if job.dry_run else "")
        status = job.status + (" (reverted)" if job.reverted_at else "")
        table.add_row(
            str(job.pk),
            job.task,
            scope,
            status,
            f"{job.progress:.0%}",
            str(changed),
            f"{job.created_at:%Y-%m-%d %H:%M}",
        )
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
    _print_job(job)
    for entry in job.logs.all():
        out.print(f"{entry.created_at:%H:%M:%S} [{entry.level}] {entry.message}", markup=False)


@jobs_app.command("cancel")
def jobs_cancel(
    job_id: Annotated[int, typer.Argument()],
    revert: Annotated[bool, typer.Option("--revert", help="Then undo what its finished chunks wrote.")] = False,
) -> None:
    """Stop a job at its next chunk boundary; its finished chunks are kept unless --revert."""
    setup()
    from taxopost.jobs.operations import cancel_job

    job = cancel_job(_job(job_id), revert=revert)
    reverted = " and reverted" if job.reverted_at else ""
    err.print(f"job {job.pk}: {job.status}{reverted}" + (" (cancel requested)" if not job.is_finished else ""))


@jobs_app.command("resume")
def jobs_resume(job_id: Annotated[int, typer.Argument()]) -> None:
    """Run what a failed, stale or canceled job has left; its finished chunks are kept."""
    setup()
    from taxopost.jobs.operations import resume_job

    job = _job(job_id)
    _follow(job, lambda executor: resume_job(job, executor))


@jobs_app.command("reap")
def jobs_reap(
    stale_after: Annotated[
        float | None,
        typer.Option("--stale-after", help="Seconds without heartbeat (default TAXOPOST_JOB_STALE_SECONDS, 300)."),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Resume each job reaped.")] = False,
) -> None:
    """Mark running jobs whose heartbeat stopped (their worker died) as failed and resumable."""
    setup()
    from taxopost.jobs.models import Job
    from taxopost.jobs.operations import reap_stale_jobs, resume_job

    if stale_after is not None and stale_after < 0:
        raise InputError("--stale-after", stale_after, "must be zero or more seconds")
    reaped = reap_stale_jobs(stale_after=stale_after)
    for job in reaped:
        err.print(f"job {job.pk}: {job.status}: {job.error or 'canceled'}", markup=False)
        if resume and job.status == Job.FAILED:
            _follow(job, lambda executor, job=job: resume_job(job, executor))
    if not reaped:
        err.print("no stale job")


@jobs_app.command("revert")
def jobs_revert(job_id: Annotated[int, typer.Argument()]) -> None:
    """Undo a job: remove its classifications, restore what it demoted, recompute determinations."""
    setup()
    from taxopost.jobs.operations import revert_job

    summary = revert_job(_job(job_id))
    err.print(
        f"job {job_id} reverted: {summary['removed']} classifications removed, {summary['restored']} restored, "
        f"{summary['determinations_changed']} determinations changed"
    )


# -- export ------------------------------------------------------------------------------------


@export_app.command("occurrences")
def export_occurrences_cmd(
    capture_set: Annotated[str, typer.Option("--capture-set", help="Name of the capture set.")],
    output: Annotated[Path, typer.Option("--output", help="CSV or .parquet file.")],
) -> None:
    """Occurrences with their determination, rank, score, deciding algorithm and provenance chain."""
    setup()
    from taxopost.observations.export import export_occurrences

    n = export_occurrences(capture_set, output)
    err.print(f"{n} occurrences -> {output}")


def _config_object(text: str | None) -> dict:
    """``--config``: a JSON object, else InputError naming the option and what is wrong."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError("--config", text, f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise InputError("--config", text, 'must be a JSON object, e.g. {"thresholds": {"species": 0.8}}')
    return data
