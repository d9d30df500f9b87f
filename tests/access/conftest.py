import pytest

from tests.web import platform, sync_jobs  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_counters():
    """Login failures and token-request rates live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
