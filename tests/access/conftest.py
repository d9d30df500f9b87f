from tests.web import platform, sync_jobs  # noqa: F401
