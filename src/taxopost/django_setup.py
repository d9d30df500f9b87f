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
