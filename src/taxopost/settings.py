"""Django settings, all from the environment; the defaults are the embedded platform (SQLite).

| variable | meaning | default |
| --- | --- | --- |
| ``DATABASE_URL`` | database, e.g. ``postgres://postgres@127.0.0.1:5432/taxopost`` | SQLite file in the user data dir |
| ``TAXOPOST_DATA_DIR`` | where the SQLite file and demo data live | platformdirs' user data dir |
| ``TAXOPOST_BROKER_URL`` | Celery broker (Redis); unset = embedded executor | unset |
| ``TAXOPOST_JOB_STALE_SECONDS`` | a running job without a heartbeat for this long is stale (reaped) | 300 |
| ``TAXOPOST_JOB_REAP_SECONDS`` | how often every Celery worker reaps (and resumes) stale jobs | 60 |
| ``TAXOPOST_JOB_WAIT_SECONDS`` | how often a job waiting for its project checks again | 5 |
| ``TAXOPOST_CHUNKS_IN_FLIGHT`` | chunks of one job queued or running at once on Celery | 16 |
| ``TAXOPOST_SECRET_KEY`` | Django secret key | a public development key: a server refuses it outside development |
| ``TAXOPOST_DEBUG`` | Django DEBUG | off |
| ``TAXOPOST_DEVELOPMENT`` | a server on your own machine: public key allowed (``serve`` on loopback sets it) | off |
| ``TAXOPOST_HSTS_SECONDS`` | ``Strict-Transport-Security`` max-age (HTTPS only) | 0 (none) |
| ``TAXOPOST_HSTS_INCLUDE_SUBDOMAINS``, ``TAXOPOST_HSTS_PRELOAD`` | the HSTS header's flags | off |
| ``TAXOPOST_SECURE_COOKIES`` | session and CSRF cookies sent over HTTPS only | off |
| ``TAXOPOST_SSL_REDIRECT`` | redirect every HTTP request to HTTPS | off |
| ``TAXOPOST_PROXY_SSL_HEADER`` | the header a trusted proxy sets to ``https`` (e.g. ``X-Forwarded-Proto``) | unset |
| ``TAXOPOST_CSRF_TRUSTED_ORIGINS`` | comma-separated origins (``https://taxopost.example.org``) | none |
| ``TAXOPOST_CSP`` | ``Content-Security-Policy``: ``on`` for taxopost's policy, or a policy of your own | unset (none) |
| ``TAXOPOST_ALLOWED_HOSTS`` | comma-separated | ``localhost,127.0.0.1`` |
| ``TAXOPOST_CACHE_URL`` | cache of the review and evaluation pages shared by processes (Redis) | per process |
| ``TAXOPOST_PAGE_CACHE_SECONDS`` | how long a cached page is kept (a new job or import makes a new one anyway) | 3600 |
| ``TAXOPOST_STATIC_ROOT`` | where ``collectstatic`` copies static files for another web server | unset |
| ``TAXOPOST_TOKEN_TTL_DAYS`` | days until a new API token expires | 90 |
| ``TAXOPOST_LOGIN_FAILURES`` | failed logins of one username from one address before it is locked | 5 |
| ``TAXOPOST_LOGIN_LOCK_SECONDS`` | how long those failures are remembered (the lock) | 900 |
| ``TAXOPOST_TOKEN_RATE`` | requests to the token endpoint per client address (DRF rate) | ``10/minute`` |
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from platformdirs import user_data_dir


def _flag(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def _positive(name: str, default: float, kind: type = float) -> float:
    """A positive number from the environment, or a message naming the variable and its value."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be a positive {'integer' if kind is int else 'number'}")
    return value


def _seconds(name: str) -> int:
    """A whole number of seconds, 0 or more, from the environment (0 when unset)."""
    raw = os.environ.get(name, "").strip()
    if raw and not raw.isdigit():
        raise ImproperlyConfigured(f"{name}={raw!r}: must be a whole number of seconds (0 or more)")
    return int(raw or 0)


DATA_DIR = Path(os.environ.get("TAXOPOST_DATA_DIR") or user_data_dir("taxopost"))
DEBUG = _flag("TAXOPOST_DEBUG")
# A server on one's own machine (docs/reliability.md): the public development key is allowed.
DEVELOPMENT = _flag("TAXOPOST_DEVELOPMENT")

# The development key is public: a web server refuses to start with it unless DEBUG or
# DEVELOPMENT is on (taxopost.security); commands that serve nothing use it freely.
SECRET_KEY = os.environ.get("TAXOPOST_SECRET_KEY", "taxopost-development-key-not-for-production")

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("TAXOPOST_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from the package: no CDN
    "taxopost.taxa",
    "taxopost.ml",
    "taxopost.observations",
    "taxopost.access",
    "taxopost.jobs",
    "taxopost.postprocessing",
    "taxopost.review",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and the API browser's static files straight from the installed apps, in
    # any mode: `taxopost serve` runs with DEBUG off and no collectstatic step.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "taxopost.query_checks.RefuseNulInQueryMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "taxopost.security.ContentSecurityPolicyMiddleware",
]

# -- production switches (docs/reliability.md); all off by default, for the embedded platform ----
SECURE_HSTS_SECONDS = _seconds("TAXOPOST_HSTS_SECONDS")
SECURE_HSTS_INCLUDE_SUBDOMAINS = _flag("TAXOPOST_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = _flag("TAXOPOST_HSTS_PRELOAD")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _flag("TAXOPOST_SECURE_COOKIES")
SECURE_SSL_REDIRECT = _flag("TAXOPOST_SSL_REDIRECT")
_proxy_header = os.environ.get("TAXOPOST_PROXY_SSL_HEADER", "").strip()
# Only behind a proxy that sets this header itself (and strips it from clients' requests).
SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https") if _proxy_header else None
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("TAXOPOST_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]
_csp = os.environ.get("TAXOPOST_CSP", "").strip()
# taxopost's own pages, the admin and the API browser load scripts from this site only; the
# evaluation report inlines its styles and figures (data: images).
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
_csp_flag = _csp.lower() in ("1", "on", "true", "yes"), _csp.lower() in ("0", "off", "false", "no")
CONTENT_SECURITY_POLICY = DEFAULT_CSP if _csp_flag[0] else "" if _csp_flag[1] else _csp

ROOT_URLCONF = "taxopost.urls"
WSGI_APPLICATION = "taxopost.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


#: Seconds a request thread keeps its database connection (Django closes it at the end of a request
#: older than this). Opening one per request cost a sixth of a cached page on SQLite (reading the
#: schema, mapping the journal), under any WSGI server: taxopost serve's or gunicorn's threads.
_CONNECTION_MAX_AGE = 60


def _database() -> dict:
    url = os.environ.get("DATABASE_URL")
    if url:
        config = dj_database_url.parse(url, conn_max_age=_CONNECTION_MAX_AGE)
    else:
        config = {"NAME": str(DATA_DIR / "taxopost.sqlite3"), "CONN_MAX_AGE": _CONNECTION_MAX_AGE}
    if config.get("ENGINE", "").endswith("sqlite3") or not url:
        # The embedded default: SQLite with WAL and a full-size parameter limit.
        config["ENGINE"] = "taxopost.dbbackends.sqlite3"
        config.setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
        config["OPTIONS"]["timeout"] = float(os.environ.get("TAXOPOST_SQLITE_TIMEOUT", "30"))
    test_name = os.environ.get("TAXOPOST_TEST_DATABASE")
    if test_name:
        config["TEST"] = {"NAME": test_name}
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Only for a deployment behind another web server (`manage collectstatic`); `taxopost serve` needs none.
STATIC_ROOT = os.environ.get("TAXOPOST_STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True  # no collectstatic needed: files are found in the apps at start-up
LOGIN_URL = "login"  # the review pages' login, for members without is_staff too (taxopost.access.login)
LOGIN_REDIRECT_URL = "/"


# The review and evaluation pages are cached per state of their data (taxopost.review.page_cache):
# in this process by default, or in Redis shared by every web process.
# Each user's rendered admin frame of those pages (taxopost.review.frame) is kept in this process
# whatever the default: cheap to render again, it must not push pages out of a shared cache.
# The token endpoint's rate counts (taxopost.api.tokens) have a cache of their own: in the
# pages' 100 entries, requests for pages could push them out and start every count again.
# Sessions have one too, for the same reason (see _session_engine).
def _caches(database: dict) -> dict:
    """The caches; a shared Redis one has keys prefixed by ``database``'s identity, so that two
    deployments sharing a Redis never serve each other's pages or sidebars (keys hold row ids)."""
    locmem = "django.core.cache.backends.locmem.LocMemCache"
    frames = {"BACKEND": locmem, "LOCATION": "taxopost-frames", "TIMEOUT": 60, "OPTIONS": {"MAX_ENTRIES": 512}}
    url = os.environ.get("TAXOPOST_CACHE_URL", "").strip()
    if not url:
        rates = {"BACKEND": locmem, "LOCATION": "taxopost-rates", "OPTIONS": {"MAX_ENTRIES": 100_000}}
        bounded = "taxopost.access.session_cache.BoundedLocMemCache"  # entries live 10 s at most
        sessions = {"BACKEND": bounded, "LOCATION": "taxopost-sessions", "OPTIONS": {"MAX_ENTRIES": 10_000}}
        default = {"BACKEND": locmem, "OPTIONS": {"MAX_ENTRIES": 100}}
        return {"default": default, "frames": frames, "rates": rates, "sessions": sessions}
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"TAXOPOST_CACHE_URL={url!r}: must be a redis:// URL")
    where = repr([str(database.get(key) or "") for key in ("ENGINE", "HOST", "PORT", "NAME")])
    prefix = "taxopost-" + hashlib.sha256(where.encode()).hexdigest()[:16]
    redis = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "KEY_PREFIX": prefix}
    return {
        "default": redis,
        "frames": frames,
        "rates": {**redis, "KEY_PREFIX": f"{prefix}-rates"},
        "sessions": {**redis, "KEY_PREFIX": f"{prefix}-sessions"},
    }


def _session_engine(caches: dict) -> str:
    """Sessions read through a cache in front of the database (their query cost a sixth of a cached
    page) where every process sees one cache: a shared Redis, or one process (``taxopost serve``
    sets it). Processes with a cache each would keep a session that another has logged out; the
    one process keeps an entry 10 s at most, in case a second one serves its database after all
    (``taxopost.access.session_cache``)."""
    shared = not caches["sessions"]["BACKEND"].endswith("LocMemCache")
    return "django.contrib.sessions.backends." + ("cached_db" if shared else "db")


CACHES = _caches(DATABASES["default"])
SESSION_CACHE_ALIAS = "sessions"
SESSION_ENGINE = _session_engine(CACHES)
PAGE_CACHE_SECONDS = _positive("TAXOPOST_PAGE_CACHE_SECONDS", 3600.0)

# Requests and uploads stay bounded (imports of large files go through the CLI, not the web).
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000

# Token first: an anonymous request gets 401 with ``WWW-Authenticate: Token`` (not a bare 403).
# Tokens are stored hashed and expire (taxopost.access.tokens); who may do what comes from the
# project roles (taxopost.access.rules, docs/access.md).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "taxopost.access.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["taxopost.api.permissions.ProjectAccess"],
    "DEFAULT_THROTTLE_RATES": {"token": os.environ.get("TAXOPOST_TOKEN_RATE", "10/minute")},
    # JSON bodies are bounded in size, depth and numbers (400, never a server error); forms as usual.
    "DEFAULT_PARSER_CLASSES": [
        "taxopost.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "taxopost.api.exceptions.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "taxopost.api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "PAGE_SIZE": 50,
}

TOKEN_TTL_DAYS = _positive("TAXOPOST_TOKEN_TTL_DAYS", 90.0)
if TOKEN_TTL_DAYS > 36_500:  # taxopost.access.tokens.MAX_DAYS: an expiry past year 9999 cannot be stored
    raise ImproperlyConfigured(f"TAXOPOST_TOKEN_TTL_DAYS={TOKEN_TTL_DAYS:g}: must be at most 36500 (a hundred years)")
LOGIN_FAILURES_ALLOWED = int(_positive("TAXOPOST_LOGIN_FAILURES", 5, int))
LOGIN_LOCK_SECONDS = _positive("TAXOPOST_LOGIN_LOCK_SECONDS", 900.0)

SPECTACULAR_SETTINGS = {
    "TITLE": "taxopost API",
    "DESCRIPTION": "Taxa, capture sets, occurrences, classifications with their provenance, and "
    "post-processing jobs. Reading a project's data needs a role on it (or the project to be public); "
    "creating, canceling, reverting and resuming its jobs needs the data manager role (docs/access.md).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "taxopost.api.schema.add_task_configs",
    ],
}

# Jobs: the embedded executor runs in-process; a broker URL switches to Celery workers (docs/jobs.md).
BROKER_URL = os.environ.get("TAXOPOST_BROKER_URL", "")
JOB_STALE_SECONDS = _positive("TAXOPOST_JOB_STALE_SECONDS", 300.0)
JOB_REAP_SECONDS = _positive("TAXOPOST_JOB_REAP_SECONDS", 60.0)
JOB_WAIT_SECONDS = _positive("TAXOPOST_JOB_WAIT_SECONDS", 5.0)
# Enough to keep every worker process busy; few enough that other jobs' chunks are not queued
# behind thousands of this job's (a job's heartbeat would go stale while they wait).
JOB_CHUNKS_IN_FLIGHT = int(_positive("TAXOPOST_CHUNKS_IN_FLIGHT", 16, int))

# Celery (read by taxopost.celery under the CELERY_ namespace). Tasks are acknowledged late and
# requeued when their worker process dies; they carry primary keys only and store no results.
CELERY_BROKER_URL = BROKER_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker host that drops packets must not hold a request or `taxopost run` for minutes: five
# seconds to connect, then the job is failed and resumable (celery_jobs.send).
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 5}
CELERY_TASK_DEFAULT_QUEUE = "taxopost"
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a chunk is seconds of work: do not hoard them in one worker
# Celery's Django fixup closes the database connection after every task unless told to reuse it;
# a new PostgreSQL backend per chunk costs a connection and cold catalog caches. Connections are
# kept instead and closed by Django's own rule (CONN_MAX_AGE, or broken) around each task.
CELERY_DB_REUSE_MAX = 1_000_000
# No beat schedule: every worker reaps stale jobs itself (taxopost.postprocessing.running.celery_jobs).

# Everything goes to stderr. Django's own default sends a server error (500) only to the admins'
# mail and prints it only in DEBUG: here its traceback is always logged, with the request's path.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "taxopost": {"handlers": ["console"], "level": os.environ.get("TAXOPOST_LOG_LEVEL", "WARNING")},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "django.security": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
