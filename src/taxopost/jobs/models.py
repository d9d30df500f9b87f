"""Jobs: one run of a post-processing task on a scope, with status, progress, metrics and a log.

A job's scope is split into :class:`JobChunk` rows when it starts (its plan). Each chunk is
written in one transaction that also marks it done, so a plan survives any crash: finished
chunks are never redone and unfinished ones left nothing behind.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Job(models.Model):
    CREATED, QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = (
        "created",
        "queued",
        "running",
        "succeeded",
        "failed",
        "canceled",
    )
    STATUSES = [(s, s) for s in (CREATED, QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED)]
    FINISHED = (SUCCEEDED, FAILED, CANCELED)

    CAPTURE_SET, OCCURRENCE = "capture_set", "occurrence"
    SCOPES = [(CAPTURE_SET, "capture set"), (OCCURRENCE, "occurrence")]

    task = models.CharField(max_length=64, db_index=True, help_text="Registered post-processing task key")
    task_version = models.CharField(max_length=32, blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="The task's validated config")
    scope_type = models.CharField(max_length=32, choices=SCOPES)
    scope_id = models.BigIntegerField()
    project = models.ForeignKey(
        "observations.Project",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        help_text="The scope's project: jobs of one project run one at a time",
    )
    dry_run = models.BooleanField(default=False)
    stack = models.BooleanField(
        default=False,
        help_text="Apply the task on top of its own earlier output instead of replacing it",
    )
    chunk_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="Classifications per chunk; empty = the task's default"
    )

    status = models.CharField(max_length=16, choices=STATUSES, default=CREATED, db_index=True)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=64, blank=True)
    stages = models.JSONField(default=list, blank=True, help_text="[{name, progress}] in order")
    metrics = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="Dry-run summary, revert summary")
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    revert_on_cancel = models.BooleanField(default=False, help_text="Revert the finished chunks once canceled")
    reverted_at = models.DateTimeField(null=True, blank=True)
    executor = models.CharField(max_length=32, blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    idempotency_key = models.CharField(
        max_length=255, null=True, blank=True, help_text="The API client's Idempotency-Key: a retry returns this job"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When the job (last) began running")
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["created_by", "idempotency_key"], name="job_unique_idempotency_key")
        ]

    def __str__(self) -> str:
        mode = " (dry run)" if self.dry_run else ""
        scope = self.scope_type.replace("_", " ")
        return f"Job {self.pk}: {self.task} on {scope} {self.scope_id}{mode}, {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    def log(self, message: str, level: str = "info") -> None:
        JobLog.objects.create(job=self, level=level, message=message)


class JobChunk(models.Model):
    """One slice of a job's plan: the classifications it examines, written in one transaction.

    ``status`` moves pending -> queued (sent to a worker) -> running -> done. Only ``done`` is
    final, and it is set in the transaction that writes the chunk's results; any other status
    just tells what was in flight when a worker died, and resuming the job sets it back to pending.
    """

    PENDING, QUEUED, RUNNING, DONE = "pending", "queued", "running", "done"
    STATUSES = [(s, s) for s in (PENDING, QUEUED, RUNNING, DONE)]

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    ids = models.JSONField(help_text="Ids of the classifications it examines, ascending")
    occurrences = models.JSONField(
        null=True, blank=True, help_text="The occurrence of each of ids when planned (null: none), in the same order"
    )
    size = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Starts since the job was (re)started")
    metrics = models.JSONField(default=dict, blank=True, help_text="What this chunk counted, once done")
    worker = models.CharField(max_length=255, blank=True, help_text="host:pid that last started it")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="job_chunk_unique_index")]
        indexes = [models.Index(fields=["job", "status"], name="job_chunk_status")]

    def __str__(self) -> str:
        return f"Job {self.job_id} chunk {self.index} [{self.status}]"


class JobLog(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="logs")
    created_at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=16, default="info")
    message = models.TextField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message}"


class DatabaseIdentity(models.Model):
    """One row: this database's identity, which every job message carries.

    Two deployments sharing one broker send their jobs to queues named after their database and
    check the identity in each message, so neither runs the other's job ids on its own rows.
    """

    key = models.UUIDField(default=uuid.uuid4, editable=False)

    class Meta:
        verbose_name_plural = "database identity"

    def __str__(self) -> str:
        return str(self.key)
