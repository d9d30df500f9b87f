"""``taxopost manage``: Django's management commands on taxopost's settings and database.

What an operator needs beyond taxopost's own commands: ``createsuperuser`` and
``changepassword`` for the first admin of a production database, ``grant_role`` /
``revoke_role`` for project roles and ``create_token`` / ``revoke_tokens`` for API tokens
(docs/access.md), ``check --deploy`` before going live, ``migrate`` and ``showmigrations``
after an upgrade, ``dbshell``.
"""

from __future__ import annotations

import typer

from taxopost.cli.app import app


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def manage(ctx: typer.Context) -> None:
    """Run a Django management command (createsuperuser, check --deploy, migrate, ...).

    Everything after ``manage`` goes to Django: ``taxopost manage help`` lists the commands.
    """
    from taxopost.django_setup import setup

    setup()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["taxopost manage", *(ctx.args or ["help"])])
