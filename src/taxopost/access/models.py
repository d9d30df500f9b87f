"""Project memberships (a role per user and project) and API tokens (stored as digests only)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from taxopost.access.roles import ROLE_CHOICES
from taxopost.observations.models import Project


class Membership(models.Model):
    """``user`` holds ``role`` on ``project`` (one role per user and project)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=ROLE_CHOICES)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "user"]
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="membership_unique_user_project")]

    def __str__(self) -> str:
        return f"{self.user} is {self.get_role_display()} of {self.project}"


class AccessToken(models.Model):
    """An API token. Only the SHA-256 of its key is kept: the key is shown once, when it is made.

    The key is 40 random hex digits, so a plain digest is as good as a slow password hash here
    and is looked up with one indexed query per request.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=255, blank=True, help_text="What the token is for")
    prefix = models.CharField(max_length=8, help_text="The key's first characters: enough to tell tokens apart")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the key, hex")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_valid(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class LoginFailures(models.Model):
    """Recent login attempts of one username from one address not followed by a success
    (:mod:`taxopost.access.login_limits`).

    In the database, not a cache: every server process sees the same count, and no flood of
    other entries can push it out.
    """

    key = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the username and address, hex")
    count = models.PositiveIntegerField(default=1)
    first_at = models.DateTimeField(db_index=True, help_text="The first failure; the count ends a lock's time after it")

    class Meta:
        verbose_name_plural = "login failures"

    def __str__(self) -> str:
        return f"{self.count} failures since {self.first_at:%Y-%m-%d %H:%M}"
