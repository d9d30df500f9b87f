"""The one ``taxopost`` command.

Every subcommand parses and validates its options, then calls one domain function shared with
the jobs and the evaluator. Bad input ends with a one-line message naming the file, field and
value, and exit code 2; never a traceback.
"""

from __future__ import annotations

import sys

import click
from django.core.exceptions import ImproperlyConfigured

# Each light command module registers its commands on ``app`` when imported; the others are
# deferred (taxopost.cli.app.DEFERRED): imported when one of their commands runs.
from taxopost.cli import demo, export, jobs, manage, serve, worker  # noqa: F401
from taxopost.cli.app import build
from taxopost.cli.output import fail
from taxopost.errors import InputError, ServiceUnavailable


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command, turning bad input into exit code 2 with one line."""
    try:
        result = build()(args=argv, prog_name="taxopost", standalone_mode=False)
    except InputError as exc:
        return fail(exc.message)
    except ServiceUnavailable as exc:  # the broker is away: what was left (a resumable job) is in the message
        return fail(str(exc))
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
