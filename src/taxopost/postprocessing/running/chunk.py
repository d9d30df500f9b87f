"""Run a post-processing task for a job: plan its chunks, then run one chunk at a time.

This is the one implementation of a job's work. The embedded executor calls :func:`run_chunk`
in a loop; Celery runs one task per chunk on any number of workers. A chunk:

1. begins (one short transaction): lock the chunk, then the job; skip it when it is done, or
   when the job is not running or was asked to stop; otherwise mark it running, which is what
   a cancel waits for.
2. reads: the task reads the chunk's inputs that are still valid (:meth:`~PostProcessingTask.resolve`:
   terminal, or the source of an earlier output of the task that the run replaces), in a fixed
   number of queries, and computes with :mod:`taxopost.core`; nothing is written.
3. commits (one transaction): lock the chunk again (a copy of it that finished first makes this
   a no-op), lock the inputs it writes to and check them again (on a first run, in the same
   statement that demotes them), write the new classifications in bulk, demote their sources,
   replace the earlier outputs above them (and make a source the current answer again where the
   new config leaves it as it is), recompute the affected determinations, and mark the chunk
   done with its counts; last, lock the job's row to store progress and count the chunks left.
   A dry run does the same checks and counts, writes none of it, and estimates the
   determinations the writes would change.

A worker that dies at any point leaves either a done chunk or nothing of it: the transaction
that writes it is the one that marks it done. Finishing a job (its metrics and status) is in
:mod:`.lifecycle`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from dataclasses import dataclass

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from taxopost.dbutils import insert_rows
from taxopost.errors import JobError
from taxopost.jobs import chunks as plan_store
from taxopost.jobs.models import Job, JobChunk
from taxopost.jobs.reporting import planned, record_progress
from taxopost.jobs.summary import Summary
from taxopost.ml.models import Algorithm
from taxopost.observations.chains import Input, demote_terminal
from taxopost.observations.determinations import count_determination_changes, recompute_determinations
from taxopost.observations.models import Classification
from taxopost.postprocessing.base import Change, ChunkResult, PostProcessingTask, Scope
from taxopost.postprocessing.registry import get_task
from taxopost.tasks import parse_config

#: Largest chunk a job may ask for: 10,000 vectors of 2,500 float32 classes are 100 MB.
MAX_CHUNK_SIZE = 10_000
#: Starts of one chunk before its job fails: retries of transient errors and redeliveries after a
#: worker died both count, so a chunk that kills every worker that takes it cannot loop forever.
MAX_CHUNK_STARTS = 10
#: Rows of a plan read at a time (two integers each), whatever the scope's size.
PLAN_FETCH = 10_000
#: Prepared tasks a worker process keeps, by job: preparing reads the taxonomy and the config's
#: references once per job instead of once per chunk.
PREPARED_CACHE = 4

DONE, ALREADY_DONE, SKIPPED = "done", "already done", "skipped"


@dataclass(frozen=True)
class ChunkOutcome:
    """What became of one chunk. ``left``: the job's chunks not done yet, after this one."""

    state: str
    left: int = 0
    done_rows: int = 0
    total_rows: int = 0
    cancel_requested: bool = False


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def build_task(job: Job) -> PostProcessingTask:
    task_class = get_task(job.task)
    config = parse_config(task_class.config_model, job.config, prefix="config.")
    return task_class(config, Scope(job.scope_type, job.scope_id), job=job, dry_run=job.dry_run, stack=job.stack)


def plan(job: Job) -> PostProcessingTask:
    """Prepare the task, select what it examines and store the plan (in the caller's transaction).

    The plan lists classifications by occurrence, then id: see :func:`taxopost.jobs.chunks.save_plan`.
    """
    task = build_task(job)
    task.prepare()
    rows = task.plan_rows()
    plan_store.save_plan(job, rows.iterator(chunk_size=PLAN_FETCH), job.chunk_size or task.chunk_size)
    planned(job, plan_store.chunk_counts(job.pk))
    _remember(job, task)
    return task


def run_chunk(chunk_id: int, *, task: PostProcessingTask | None = None) -> ChunkOutcome:
    """Process and write one chunk of a running job; see the module's docstring for the steps.

    ``task``: the job's task already prepared (the embedded loop's), else prepared here once per
    job and worker process.
    """
    begun = _begin(chunk_id, worker_name())
    if not isinstance(begun, tuple):
        return begun
    chunk, job = begun
    unsaved: list[Algorithm] = []
    try:
        task = task or _prepared(job)
        inputs, ids = task.chunk_inputs(chunk.ids)
        superseded = len(chunk.ids) - len(ids)
        left = []
        if task.whole_occurrences and superseded and chunk.occurrences is not None:
            inputs, ids, left = _members_of_whole_occurrences(chunk, inputs, ids)
        result = task.process(ids)
        if left:
            result.skipped[MEMBER_CHANGED] += len(left)
        unsaved = list(
            {id(c.new.algorithm): c.new.algorithm for c in result.changes if c.new.algorithm.pk is None}.values()
        )
        return _commit(chunk, job, task, result, inputs, superseded=superseded)
    except BaseException:
        # The transaction that stored these output algorithms rolled back: a retry with the same
        # task (the embedded loop's) stores them again instead of writing under ids now gone.
        for algorithm in unsaved:
            algorithm.pk, algorithm._state.adding = None, True
        _forget(job.pk)
        with contextlib.suppress(DatabaseError):  # on a broken connection the chunk stays running: a rerun takes it
            _release(chunk.pk)
        raise


def _begin(chunk_id: int, worker: str) -> tuple[JobChunk, Job] | ChunkOutcome:
    """Mark the chunk running if its job runs; lock order chunk then job, as in :func:`_commit`."""
    with transaction.atomic():
        _commit_without_flush()
        chunk = JobChunk.objects.select_for_update().filter(pk=chunk_id).first()
        if chunk is None:  # its job was deleted
            return ChunkOutcome(SKIPPED)
        job = Job.objects.select_for_update(no_key=True).get(pk=chunk.job_id)
        if chunk.status == JobChunk.DONE:
            if job.status != Job.RUNNING:  # a copy, its job back in the queue: its start sends the rest
                return ChunkOutcome(SKIPPED)
            state = ALREADY_DONE  # a copy of a chunk that finished: its caller goes on with the job
        else:
            if job.status != Job.RUNNING or job.cancel_requested:
                return ChunkOutcome(SKIPPED, cancel_requested=job.cancel_requested)
            if chunk.attempts >= MAX_CHUNK_STARTS:
                raise JobError(
                    f"chunk {chunk.index} was started {chunk.attempts} times without finishing "
                    f"(last on {chunk.worker}); a worker may die on it each time"
                )
            now = timezone.now()
            chunk.status, chunk.worker, chunk.started_at = JobChunk.RUNNING, worker, now
            chunk.attempts += 1
            chunk.save(update_fields=["status", "attempts", "worker", "started_at"])
            Job.objects.filter(pk=job.pk).update(heartbeat_at=now)
            return chunk, job
    counts = plan_store.chunk_counts(chunk.job_id)
    return ChunkOutcome(state, counts.left, counts.done_rows, counts.total_rows)


def _commit_without_flush() -> None:
    """Let this transaction's ``COMMIT`` return before PostgreSQL has flushed it to disk.

    A chunk is the unit of recovery, so waiting for the flush buys nothing: a crash of the
    database before it (a fraction of a second later) loses the whole transaction, never part
    of it, which leaves the chunk not done, as if its worker had died before committing; a
    resumed job runs it again. The transaction that finishes a job commits with the flush, and
    the log is flushed in order: a finished job has every chunk on disk. Waiting cost a fifth of
    a roll-up chunk's time (``benchmarks/db_writes.py``). Only in a transaction of its own:
    inside a caller's, the setting would hold until the caller's commit.
    """
    if connection.vendor == "postgresql" and len(connection.atomic_blocks) == 1:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


class _JobStopped(Exception):
    """The job stopped running while its chunk was computed: the chunk's transaction rolls back."""


def _commit(
    chunk: JobChunk,
    job: Job,
    task: PostProcessingTask,
    result: ChunkResult,
    inputs: dict[int, Input],
    *,
    superseded: int,
) -> ChunkOutcome:
    try:
        return _commit_running(chunk, job, task, result, inputs, superseded=superseded)
    except _JobStopped:
        _release(chunk.pk)
        return ChunkOutcome(SKIPPED)


def _commit_running(
    chunk: JobChunk,
    job: Job,
    task: PostProcessingTask,
    result: ChunkResult,
    inputs: dict[int, Input],
    *,
    superseded: int,
) -> ChunkOutcome:
    with transaction.atomic():
        _commit_without_flush()
        status = JobChunk.objects.select_for_update().filter(pk=chunk.pk).values_list("status", flat=True).get()
        if status == JobChunk.DONE:  # a copy of this chunk (a redelivered message) finished first
            state = ALREADY_DONE
        else:
            state = DONE
            summary = Summary(superseded=superseded)
            written = _apply(result, job, task, inputs, summary)
            summary.add(result.changes, written, examined=result.examined, skipped=result.skipped, dry_run=job.dry_run)
            JobChunk.objects.filter(pk=chunk.pk).update(
                status=JobChunk.DONE, metrics=summary.to_json(), finished_at=timezone.now()
            )
        progress = record_progress(job.pk)  # the job's row lock: taken last, held briefly
        if not progress.running:  # reaped (then perhaps reverted) while this chunk was computed
            raise _JobStopped
    counts = progress.counts
    return ChunkOutcome(state, counts.left, counts.done_rows, counts.total_rows, progress.cancel_requested)


@dataclass(frozen=True)
class _Restore:
    """A source that is its chain's current answer again: the new config leaves it as it is."""

    source_id: int
    occurrence_id: int | None
    from_name: str
    from_rank: str
    to_name: str
    to_rank: str
    score: float


def _apply(result: ChunkResult, job: Job, task: PostProcessingTask, inputs: dict[int, Input], summary: Summary) -> int:
    """Write (or, for a dry run, count) one chunk's changes and replacements, in the caller's
    transaction; returns how many classifications were written (would be, in a dry run).

    The one place a run replaces earlier outputs: the inputs it writes to are checked again
    (locked, in a real run), and the outputs above them are replaced in the same transaction as
    the new classifications, so an interrupted chunk leaves nothing of either.
    """
    touched = {change.source_id for change in result.changes} | {pk for pk, found in inputs.items() if found.tail}
    if not touched:
        return 0
    ids = sorted(touched - {None})
    demoted: set[int] = set()
    if job.dry_run or not all(pk in inputs and not inputs[pk].tail for pk in ids):
        now_valid = task.resolve(ids, lock=not job.dry_run)
    else:  # every input was its chain's current answer: one statement checks, locks and demotes them
        demoted = demote_terminal(ids)
        now_valid = {pk: inputs[pk] for pk in demoted}
        # demoted since: valid only if an earlier output of the task is above it now
        now_valid.update(task.resolve([pk for pk in ids if pk not in demoted], lock=True))
    summary.superseded += len(ids) - len(now_valid)
    # A change without a source (a detection's first classification) has nothing to lose to
    # another job: jobs of one project run one at a time.
    keep = [change for change in result.changes if change.source_id is None or change.source_id in now_valid]
    if task.whole_occurrences and len(keep) < len(result.changes):
        keep, broken = _whole_occurrences(keep, result, demoted)
        # Left as they are: no earlier output of theirs replaced, no source restored.
        now_valid = {pk: found for pk, found in now_valid.items() if found.occurrence_id not in broken}
    result.changes[:] = keep  # the written ones first, in order, for the summary
    for change in keep:  # a transition runs from the chain's current answer
        if change.source_id is not None:
            change.from_name, change.from_rank = now_valid[change.source_id].current
    sources = {change.source_id for change in keep if change.source_id is not None}
    replacing = [found for found in now_valid.values() if found.tail]
    restores = [
        _Restore(found.id, found.occurrence_id, *found.current, found.taxon_name, found.taxon_rank, found.score)
        for found in replacing
        if found.id not in sources
    ]
    summary.add_restored(restores)
    summary.add_replaced(
        ((found.tail[0].job_id, found.tail[0].algorithm_id) for found in replacing),
        ((step.job_id, step.algorithm_id) for found in replacing for step in found.tail[1:]),
    )
    replaced = [step.id for found in replacing for step in found.tail]
    occurrences = {found.occurrence_id for found in now_valid.values()}
    occurrences |= {change.occurrence_id for change in keep if change.source_id is None}
    if job.dry_run:
        summary.determinations_changed += count_determination_changes(
            occurrences,
            demoted=[*sources, *replaced],
            promoted=[restore.source_id for restore in restores],
            added=[_added(change, now_valid) for change in keep],
        )
        return len(keep)
    _write(keep, job, demoted)
    if replaced:
        Classification.objects.filter(id__any_of=replaced).update(terminal=False, replaced_by=job)
    if restores:
        Classification.objects.filter(id__any_of=[restore.source_id for restore in restores]).update(terminal=True)
    summary.determinations_changed += recompute_determinations(occurrences, job=job)
    return len(keep)


#: Why a whole occurrence is left: a member of the plan changed before the chunk read or committed it.
MEMBER_CHANGED = "refused: a detection of the occurrence changed while the chunk ran (run the job again)"


def _members_of_whole_occurrences(
    chunk: JobChunk, inputs: dict[int, Input], ids: list[int]
) -> tuple[dict[int, Input], list[int], list[int]]:
    """The inputs and ids of the chunk's occurrences none of whose planned members is gone, and
    the ids left out: those of occurrences that lost one since the plan (another job demoted or
    reverted it), which are left whole rather than combined without it."""
    occurrence = dict(zip(chunk.ids, chunk.occurrences, strict=True))
    present = set(ids)
    broken = {occurrence[pk] for pk in chunk.ids if pk not in present and occurrence[pk] is not None}
    left = [pk for pk in ids if occurrence.get(pk) in broken]
    gone = set(left)
    return {pk: found for pk, found in inputs.items() if pk not in gone}, [pk for pk in ids if pk not in gone], left


def _whole_occurrences(
    keep: list[Change], result: ChunkResult, demoted: set[int]
) -> tuple[list[Change], set[int | None]]:
    """``keep`` without the occurrences that lost a member's change (counted in ``result.skipped``),
    and those occurrences.

    Their other members' sources stay their chains' current answers: those demoted already (in
    the statement that checked them) are made terminal again, in this transaction.
    """
    kept = {id(change) for change in keep}
    broken = {change.occurrence_id for change in result.changes if id(change) not in kept}
    left = [change for change in keep if change.occurrence_id in broken]
    if left:
        result.skipped[MEMBER_CHANGED] += len(left)
        undemote = [change.source_id for change in left if change.source_id in demoted]
        if undemote:
            Classification.objects.filter(id__any_of=undemote).update(terminal=True)
            demoted.difference_update(undemote)
    return [change for change in keep if change.occurrence_id not in broken], broken


def _added(change: Change, inputs: dict[int, Input]) -> tuple:
    occurrence = change.occurrence_id if change.source_id is None else inputs[change.source_id].occurrence_id
    return (occurrence, change.new.taxon_id, change.new.score, change.to_rank)


def _write(keep: list[Change], job: Job, demoted: set[int]) -> None:
    """Insert the new classifications and demote their sources (in the caller's transaction),
    but for those already ``demoted``."""
    if not keep:
        return
    for change in keep:
        if change.new.algorithm.pk is None:
            save_algorithm(change.new.algorithm)
    now = timezone.now()
    insert_rows(
        Classification,
        _NEW_FIELDS,
        [
            (
                c.new.detection_id, c.new.taxon_id, c.new.score, c.new.scores, c.new.logits,
                c.new.category_map_id, c.new.algorithm.pk, True, c.source_id, job.pk, c.new.details, now,
            )
            for c in keep
        ],
    )  # fmt: skip
    sources = [change.source_id for change in keep if change.source_id is not None and change.source_id not in demoted]
    if sources:
        Classification.objects.filter(id__any_of=sources).update(terminal=False)


_NEW_FIELDS = (
    "detection", "taxon", "score", "scores", "logits", "category_map", "algorithm", "terminal", "applied_to",
    "job", "details", "created_at",
)  # fmt: skip


def save_algorithm(algorithm: Algorithm) -> None:
    """Store a task's output algorithm the first time something is written under it."""
    fields = ("name", "version", "task_type", "config", "source_algorithm", "category_map_id")
    saved, _ = Algorithm.objects.get_or_create(
        key=algorithm.key, defaults={field: getattr(algorithm, field) for field in fields}
    )
    algorithm.pk = saved.pk
    algorithm._state.adding = False


def _release(chunk_id: int) -> None:
    """A chunk that failed without dying is no longer in flight (best effort: the database may be down)."""
    with contextlib.suppress(Exception):  # the failure being raised is the one worth reporting
        JobChunk.objects.filter(pk=chunk_id, status=JobChunk.RUNNING).update(status=JobChunk.PENDING)


# -- prepared tasks, per worker process -------------------------------------------------------

_cache_lock = threading.Lock()
_cache: dict[tuple, PostProcessingTask] = {}


def _key(job: Job) -> tuple:
    return (job.pk, job.started_at)  # a resumed job starts again: prepare it afresh


def _prepared(job: Job) -> PostProcessingTask:
    with _cache_lock:
        task = _cache.get(_key(job))
    if task is None:
        task = build_task(job)
        task.prepare()
        _remember(job, task)
    return task


def _remember(job: Job, task: PostProcessingTask) -> None:
    with _cache_lock:
        _cache[_key(job)] = task
        while len(_cache) > PREPARED_CACHE:
            _cache.pop(next(iter(_cache)))


def _forget(job_id: int) -> None:
    with _cache_lock:
        for key in [key for key in _cache if key[0] == job_id]:
            del _cache[key]
