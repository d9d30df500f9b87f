import pytest

from tests.web import platform, sync_jobs  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_counters():
    """Token-request rates live in a cache: each test starts with none."""
    from django.core.cache import caches

    caches["rates"].clear()
    yield
    caches["rates"].clear()


@pytest.fixture
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
