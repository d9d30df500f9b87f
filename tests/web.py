"""Fixtures shared by the web tests (API, admin, browser): users of each kind and synchronous jobs."""

from __future__ import annotations

import pytest

from tests.platform.conftest import platform  # noqa: F401  (the small moth capture set)

PASSWORD = "a-test-password-1"


@pytest.fixture
def user(db, django_user_model):
    return django_user_model.objects.create_user("reader", "reader@example.org", PASSWORD)


@pytest.fixture
def staff(db, django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.org", PASSWORD)


@pytest.fixture
def sync_jobs(monkeypatch):
    """Jobs started from the web run at once in the request (a test's transaction is never committed,
    so a background thread started on commit would never start, nor see the test's rows)."""
    from taxopost.postprocessing.running import web
    from taxopost.postprocessing.running.embedded import EmbeddedExecutor

    monkeypatch.setattr(web, "web_executor", lambda: EmbeddedExecutor())
