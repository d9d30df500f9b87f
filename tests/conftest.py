"""Shared fixtures: the real data in ../shared/data, found in place and never copied."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import pytest

# Nothing a test does may touch the user's own data folder (the embedded SQLite file lives there).
os.environ.setdefault("TAXOPOST_DATA_DIR", tempfile.mkdtemp(prefix="taxopost-tests-"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TAXOPOST_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """A SQLite test database in a file, not Django's shared in-memory one.

    The browser tests' live server and the embedded executor's background thread each open
    their own connection, and SQLite fails concurrent writers of a shared-cache memory database
    at once ("database table is locked") instead of waiting for them. (pytest-django loads the
    settings before this file runs, so this is done here rather than through the environment.)
    """
    from django.conf import settings

    settings.DATA_DIR = Path(os.environ["TAXOPOST_DATA_DIR"])
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "taxopost.dbbackends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(settings.DATA_DIR / "test.sqlite3")


@pytest.fixture(autouse=True)
def _empty_page_cache(request):
    """Each test starts with an empty cache: a page (or a user's frame of it) cached by one test
    must not answer the next."""
    yield
    if {"db", "transactional_db", "live_server"} & set(request.fixturenames):
        from django.core.cache import cache, caches

        from taxopost.review import frame

        cache.clear()
        caches["rates"].clear()
        frame.clear()


def default_ctrl_c() -> None:
    """Give a child process (``preexec_fn``) the default SIGINT: a suite started in the background
    (``make test &``) passes on an ignored one, and the child's Python then never raises
    KeyboardInterrupt, so a test of Ctrl-C would see it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(path: Path, what: str) -> Path:
    """Return ``path``; fail under CI=true when it is missing, skip otherwise (a user's machine)."""
    if not path.exists():
        message = f"{what} not found at {path}"
        if in_ci():
            pytest.fail(f"{message} (CI=true: required)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real data (AMI moth label space, CIFAR-100 outputs, iNat sample)."""
    return require(SHARED_DATA, "the shared data folder")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that touches the database: `make test` runs them again on PostgreSQL.

    Tests marked ``postgresql`` belong to that second pass only: they are deselected (not
    skipped) when the database is SQLite.
    """
    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    kept, dropped = [], []
    for item in items:
        if item.get_closest_marker("django_db") or {"db", "transactional_db", "live_server"} & set(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.database)
        (dropped if item.get_closest_marker("postgresql") and not on_postgres else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
