"""Jobs: one run of a post-processing task on a scope, with status, progress, metrics and a log."""

from __future__ import annotations

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
    dry_run = models.BooleanField(default=False)

    status = models.CharField(max_length=16, choices=STATUSES, default=CREATED, db_index=True)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=64, blank=True)
    stages = models.JSONField(default=list, blank=True, help_text="[{name, progress}] in order")
    metrics = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="Dry-run summary, revert summary")
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    reverted_at = models.DateTimeField(null=True, blank=True)
    executor = models.CharField(max_length=32, blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        mode = " (dry run)" if self.dry_run else ""
        return f"Job {self.pk}: {self.task} on {self.scope_type} {self.scope_id}{mode} [{self.status}]"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    def log(self, message: str, level: str = "info") -> None:
        JobLog.objects.create(job=self, level=level, message=message)


class JobLog(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="logs")
    created_at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=16, default="info")
    message = models.TextField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message}"
