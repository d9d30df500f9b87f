"""Start Django for the CLI, and bring the embedded database up to date on first use."""

from __future__ import annotations

import os
from functools import cache


@cache
def setup(*, migrate: bool = True) -> None:
    """Configure Django once; on the embedded default, create or migrate the SQLite file."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taxopost.settings")
    import django
    from django.conf import settings

    django.setup()
    if migrate:
        database = settings.DATABASES["default"]
        if database["ENGINE"] == "taxopost.dbbackends.sqlite3":
            settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def describe_database_error(exc: BaseException) -> str | None:
    """A one-line explanation of a database failure the user can act on, or None if it is not one."""
    try:
        from django.db import DatabaseError
    except ImportError:  # Django not loaded: cannot be a database error
        return None
    if not isinstance(exc, DatabaseError):
        return None
    from django.conf import settings

    name = settings.DATABASES["default"].get("NAME", "")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hints = {
        "readonly database": "the database file is read-only: check its permissions, or set TAXOPOST_DATA_DIR",
        "database is locked": "another process holds a write lock on the database; retry when it has finished",
        "unable to open database": "the database file cannot be opened: check TAXOPOST_DATA_DIR and permissions",
        "connection refused": "the database server does not answer: check DATABASE_URL and that it is running",
    }
    hint = next((h for key, h in hints.items() if key in text.lower()), "")
    return f"database {name}: {text}" + (f" ({hint})" if hint else "")
