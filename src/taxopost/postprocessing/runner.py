"""Run a post-processing task on its scope, chunk by chunk, for a job.

Per chunk: the task reads its rows (a fixed number of queries) and computes with the core;
then, unless this is a dry run, one transaction locks the sources that are still terminal,
writes the new classifications in bulk, demotes their sources and recomputes the affected
occurrences' determinations. A source another job demoted meanwhile is left alone, so two
overlapping runs never derive twice from one classification.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from taxopost.configs import parse_config
from taxopost.dbutils import insert_rows
from taxopost.jobs.models import Job
from taxopost.ml.models import Algorithm
from taxopost.observations.determinations import recompute_determinations
from taxopost.observations.models import Classification
from taxopost.postprocessing.base import ChunkResult, PostProcessingTask, Scope
from taxopost.postprocessing.registry import get_task

SAMPLE_SIZE = 20
TOP_TAXA = 20


@dataclass
class Summary:
    """Counts a run reports (the job's metrics) and, for previews, a sample of rows."""

    examined: int = 0
    changed: int = 0
    superseded: int = 0  # sources another job demoted between read and write
    skipped: Counter = field(default_factory=Counter)
    transitions: Counter = field(default_factory=Counter)
    to_taxa: Counter = field(default_factory=Counter)
    determinations_changed: int = 0
    sample: list[dict] = field(default_factory=list)

    def add(self, result: ChunkResult, written: int, task: PostProcessingTask) -> None:
        self.examined += result.examined
        self.skipped.update(result.skipped)
        for change in result.changes[: max(0, SAMPLE_SIZE - len(self.sample))]:
            self.sample.append(
                {
                    "classification": change.source_id,
                    "occurrence": change.occurrence_id,
                    "from": change.from_name,
                    "from_rank": change.from_rank,
                    "to": change.to_name,
                    "to_rank": change.to_rank,
                    "score": round(float(change.new.score), 6),
                }
            )
        counted = result.changes if task.dry_run else result.changes[:written]
        self.changed += len(counted)
        for change in counted:
            self.transitions[f"{change.from_rank} -> {change.to_rank}"] += 1
            self.to_taxa[change.to_name] += 1

    def as_metrics(self) -> dict:
        return {
            "examined": self.examined,
            "changed": self.changed,
            "superseded": self.superseded,
            "skipped": dict(self.skipped),
            "transitions": dict(self.transitions.most_common()),
            "to_taxa": dict(self.to_taxa.most_common(TOP_TAXA)),
            "determinations_changed": self.determinations_changed,
        }


class Canceled(Exception):
    """Raised at a chunk boundary when the job was asked to stop."""


def build_task(job: Job) -> PostProcessingTask:
    task_class = get_task(job.task)
    config = parse_config(task_class.config_model, job.config, prefix="config.")
    return task_class(config, Scope(job.scope_type, job.scope_id), job=job, dry_run=job.dry_run)


def run_task(job: Job, reporter) -> Summary:
    """Run ``job``'s task; ``reporter`` receives stages, progress and cancel checks."""
    task = build_task(job)
    reporter.stage("preparing")
    task.prepare()
    ids = task.select()
    reporter.stage("processing", total=len(ids))
    summary = Summary()
    for start in range(0, len(ids), task.chunk_size):
        if reporter.cancel_requested():
            raise Canceled
        chunk = ids[start : start + task.chunk_size]
        result = task.process(chunk)
        written = len(result.changes) if task.dry_run else write_chunk(result, job, summary)
        summary.add(result, written, task)
        reporter.advance(len(chunk))
    return summary


def write_chunk(result: ChunkResult, job: Job, summary: Summary) -> int:
    """Write one chunk's changes atomically; returns how many were written (in order)."""
    if not result.changes:
        return 0
    with transaction.atomic():
        sources = [change.source_id for change in result.changes]
        still_terminal = set(
            Classification.objects.select_for_update()
            .filter(id__in=sources, terminal=True)
            .values_list("id", flat=True)
        )
        keep = [change for change in result.changes if change.source_id in still_terminal]
        summary.superseded += len(result.changes) - len(keep)
        result.changes[:] = keep  # the written ones first, in order, for the summary
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
        Classification.objects.filter(id__in=[change.source_id for change in keep]).update(terminal=False)
        summary.determinations_changed += recompute_determinations({change.occurrence_id for change in keep}, job=job)
    return len(keep)


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
