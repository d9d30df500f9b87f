"""Settings read from the environment: a bad value names the variable and the value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured

from taxopost.settings import _caches, _database, _positive, _session_engine
from tests.conftest import in_ci


@pytest.mark.parametrize(("raw", "kind", "expected"), [("", float, 300.0), ("2.5", float, 2.5), (" 8 ", int, 8)])
def test_positive_settings_accept_positive_numbers(monkeypatch, raw, kind, expected):
    monkeypatch.setenv("TAXOPOST_X", raw)
    assert _positive("TAXOPOST_X", 300.0, kind) == expected


@pytest.mark.parametrize(
    ("raw", "kind", "word"),
    [("0", float, "number"), ("-1", float, "number"), ("abc", float, "number"), ("1.5", int, "integer")],
)
def test_positive_settings_name_the_variable_and_the_value(monkeypatch, raw, kind, word):
    monkeypatch.setenv("TAXOPOST_X", raw)
    with pytest.raises(ImproperlyConfigured, match=f"TAXOPOST_X='{raw}': must be a positive {word}"):
        _positive("TAXOPOST_X", 1.0, kind)


def test_the_command_reports_a_bad_setting_in_one_line(tmp_path):
    taxopost = Path(sys.executable).parent / "taxopost"
    env = {"PATH": "/usr/bin:/bin", "TAXOPOST_DATA_DIR": str(tmp_path), "TAXOPOST_JOB_STALE_SECONDS": "soon"}
    done = subprocess.run([str(taxopost), "jobs", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "taxopost: error: TAXOPOST_JOB_STALE_SECONDS='soon': must be a positive number"


def test_deployments_sharing_a_redis_cache_keep_their_keys_apart(monkeypatch):
    """Page and sidebar keys hold row ids (user 1, capture set 3): another database's must not match."""
    url = os.environ.get("TAXOPOST_TEST_CACHE_URL", "redis://127.0.0.1:6379/9")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if in_ci():
            pytest.fail(f"Redis at {url} ({exc}) (CI=true: required)")
        pytest.skip(f"Redis at {url}: {exc}")
    monkeypatch.setenv("TAXOPOST_CACHE_URL", url)
    one, other, again = (
        _caches({"ENGINE": "django.db.backends.postgresql", "HOST": "db", "PORT": 5432, "NAME": name})["default"]
        for name in ("station_a", "station_b", "station_a")
    )
    assert one == again and one["KEY_PREFIX"] != other["KEY_PREFIX"]
    caches = [RedisCache(config["LOCATION"], {"KEY_PREFIX": config["KEY_PREFIX"]}) for config in (one, other, again)]
    try:
        caches[0].set("taxopost:nav-sidebar:1:en", "superuser's links")
        assert caches[1].get("taxopost:nav-sidebar:1:en") is None
        assert caches[2].get("taxopost:nav-sidebar:1:en") == "superuser's links"  # the same deployment shares it
    finally:
        caches[0].delete("taxopost:nav-sidebar:1:en")


def test_sessions_are_cached_only_where_every_process_shares_the_cache(monkeypatch):
    """A cache per process would keep, in one process, a session that another has logged out."""
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/t.sqlite3"}
    monkeypatch.delenv("TAXOPOST_CACHE_URL", raising=False)
    assert _session_engine(_caches(database)) == "django.contrib.sessions.backends.db"
    monkeypatch.setenv("TAXOPOST_CACHE_URL", "redis://127.0.0.1:6379/9")
    caches = _caches(database)
    assert _session_engine(caches) == "django.contrib.sessions.backends.cached_db"
    # Under the deployment's own prefix, apart from the pages' keys.
    assert caches["sessions"]["KEY_PREFIX"] == caches["default"]["KEY_PREFIX"] + "-sessions"


def test_the_servers_session_cache_keeps_an_entry_seconds_not_the_sessions_age(monkeypatch):
    """A logout in another process on the database is not seen in this one's memory: its entry
    must not outlive a few seconds, whatever age the session is stored with."""
    import time

    from taxopost.access import session_cache

    cache = session_cache.BoundedLocMemCache("bounded-test", {})
    cache.set("session-key", {"_auth_user_id": "1"}, 14 * 24 * 3600)
    cache.set("forever", 1, None)
    for key in ("session-key", "forever"):
        assert cache._expire_info[cache.make_key(key)] <= time.time() + session_cache.MAX_SECONDS
    assert cache.get("session-key") == {"_auth_user_id": "1"}
    later = time.time() + session_cache.MAX_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert cache.get("session-key") is None and cache.get("forever") is None


@pytest.mark.parametrize("url", [None, "postgres://postgres@127.0.0.1:5432/taxopost", "sqlite:////tmp/t.sqlite3"])
def test_request_threads_keep_their_database_connection_on_every_database(monkeypatch, url):
    """Under gunicorn as under taxopost serve: on SQLite a connection opened per request cost a
    sixth of a cached page, and the embedded default used to close it after each one."""
    if url is None:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("DATABASE_URL", url)
    assert _database()["CONN_MAX_AGE"] == 60
