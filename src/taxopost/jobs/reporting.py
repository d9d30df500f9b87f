"""Progress, stages, heartbeat and cancel checks of a running job, written to its row."""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone

from taxopost.jobs.models import Job


class JobReporter:
    """What a running task talks to. One UPDATE per call; ``on_progress`` feeds a CLI bar."""

    def __init__(self, job: Job, on_progress: Callable[[str, int, int], None] | None = None) -> None:
        self.job = job
        self.on_progress = on_progress
        self.total = 0
        self.done = 0
        self.stages: list[dict] = []

    def stage(self, name: str, total: int = 0) -> None:
        if self.stages:
            self.stages[-1]["progress"] = 1.0
        self.stages.append({"name": name, "progress": 0.0})
        self.total, self.done = total, 0
        self._save(stage=name)
        self.job.log(f"{name}" + (f": {total} classifications" if total else ""))

    def advance(self, n: int) -> None:
        self.done += n
        if self.stages:
            self.stages[-1]["progress"] = self.done / self.total if self.total else 1.0
        self._save()

    def cancel_requested(self) -> bool:
        return Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists()

    def _save(self, **fields) -> None:
        progress = self.done / self.total if self.total else 0.0
        now = timezone.now()
        Job.objects.filter(pk=self.job.pk).update(progress=progress, stages=self.stages, heartbeat_at=now, **fields)
        self.job.progress, self.job.stages, self.job.heartbeat_at = progress, self.stages, now
        if self.on_progress is not None and self.stages:
            self.on_progress(self.stages[-1]["name"], self.done, self.total)
