"""The one ``taxopost`` command.

Every subcommand parses and validates its options, then calls one domain function shared with
the jobs and the evaluator. Bad input ends with a one-line message naming the file, field and
value, and exit code 2; never a traceback.
"""

from __future__ import annotations

import sys

import click
import typer
from django.core.exceptions import ImproperlyConfigured

from taxopost.cli.output import fail
from taxopost.errors import InputError

app = typer.Typer(
    name="taxopost",
    help="Post-processing of species-classifier predictions: rank roll-up, class masking, "
    "small-size filter, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Subcommand modules register themselves on ``app`` when imported.
from taxopost.cli import demo, evaluate, export, files, imports, jobs, manage, runs, serve, worker  # noqa: E402, F401


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command, turning bad input into exit code 2 with one line."""
    try:
        result = app(args=argv, standalone_mode=False)
    except InputError as exc:
        return fail(exc.message)
    except ImproperlyConfigured as exc:  # a setting from the environment names itself and its value
        return fail(str(exc))
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return fail("aborted", code=1)
    except KeyboardInterrupt:
        return fail("interrupted", code=130)
    except Exception as exc:
        from taxopost.django_setup import describe_database_error

        message = describe_database_error(exc)
        if message is None:
            raise
        return fail(message, code=1)
    return result if isinstance(result, int) else 0


def run() -> None:  # console_scripts entry point
    sys.exit(main())
