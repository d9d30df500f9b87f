"""``taxopost run``: a post-processing task on a capture set or an occurrence, as a job.

Its task options are generated from the registered tasks (:mod:`taxopost.cli.task_options`)
each time the command is built, so a task registered by a plugin gets its options too.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from taxopost.cli.jobs import follow_job
from taxopost.cli.output import warn
from taxopost.cli.parsing import parse_json_object, parse_settings
from taxopost.django_setup import setup
from taxopost.errors import InputError, InputErrors, quote


def _fixed(
    task: Annotated[str, typer.Argument(help="The task's key: see `taxopost run --help` for the list.")],
    *,
    capture_set: Annotated[str | None, typer.Option("--capture-set", help="Name of the capture set.")] = None,
    occurrence: Annotated[int | None, typer.Option("--occurrence", help="Id of one occurrence.")] = None,
    config: Annotated[str | None, typer.Option("--config", help="The task config as JSON.")] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE, repeatable: one config field (a JSON value, or text)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Compute and summarise; write nothing.")] = False,
    stack: Annotated[
        bool,
        typer.Option(
            "--stack",
            help="Apply the task on top of its own earlier output (default: a run with another config "
            "replaces that output, and starts from the source it was derived from).",
        ),
    ] = False,
    chunk_size: Annotated[
        int | None, typer.Option("--chunk-size", help="Classifications per chunk (default: the task's, 1000).")
    ] = None,
) -> None:
    """The options every task has (the signature's first part)."""


class RunCommand:
    """The ``run`` callback; its signature is the fixed options plus the current tasks' options."""

    __name__ = "run"
    __annotations__: dict = {}

    @property
    def __doc__(self) -> str:  # type: ignore[override]
        from taxopost.tasks import task_keys

        return (
            "Run a post-processing task on a capture set or an occurrence, as a job.\n\n"
            f"Tasks: {', '.join(task_keys())}. Each task's options are listed below with its key; "
            "--set KEY=VALUE and --config JSON set any config field."
        )

    @property
    def __signature__(self) -> inspect.Signature:
        from taxopost.cli.task_options import parameters, task_options

        fixed = list(inspect.signature(_fixed, eval_str=True).parameters.values())
        return inspect.Signature([*fixed, *parameters(task_options())])

    def __call__(self, task: str, **given: Any) -> None:
        from taxopost.cli.task_options import BY_OPTION, config_from_options, named_by_options, task_options
        from taxopost.tasks import get_spec

        spec = get_spec(task)
        options = task_options()
        sources = [
            ("--config", parse_json_object(given.pop("config"))),
            ("--set", parse_settings(given.pop("settings") or [])),
            (BY_OPTION, config_from_options(spec.key, options, given)),
        ]
        data, how = _merged(sources, {option.field: option.flag for option in options})
        setup()
        from taxopost.postprocessing.running.operations import create_job, submit_job

        scope_type, scope_id = _scope(given["capture_set"], given["occurrence"])
        try:
            job = create_job(
                spec.key,
                scope_type,
                scope_id,
                data,
                dry_run=given["dry_run"],
                stack=given["stack"],
                chunk_size=given["chunk_size"],
            )
        except InputError as exc:
            raise named_by_options(exc, options, how) from None
        for warning in (job.result or {}).get("warnings", []):
            warn(f"job {job.pk}: {warning['message']}")
        follow_job(job, lambda executor: submit_job(job, executor))


commands = typer.Typer(add_completion=False, pretty_exceptions_enable=False)  # imported when used (cli/app.py)
commands.command("run")(RunCommand())


def _merged(
    sources: list[tuple[str, dict[str, Any]]], flags: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str | Path]]:
    """The config from ``--config``, ``--set`` and the task's options, and how each field was given.

    ``--config`` (the first source) is a base the command line overrides, as a saved config is
    meant to be. Between ``--set`` and the task's options, a field given twice with different
    values is refused, naming both: letting one win silently ran a job with a setting the user
    had also asked to be something else. The same value given twice is one setting.
    """
    data: dict[str, Any] = {}
    how: dict[str, str | Path] = {}
    conflicts = []
    base = sources[0][0]
    for source, fields in sources:
        for field, value in fields.items():
            overridable = how.get(field) == base
            if field in data and not overridable and _canonical(data[field]) != _canonical(value):
                conflicts.append(
                    InputError(
                        _given(source, field, flags),
                        value,
                        f"conflicts with {_given(how[field], field, flags)}={quote(data[field])}",
                    )
                )
                continue
            data[field], how[field] = value, source
    if conflicts:
        raise conflicts[0] if len(conflicts) == 1 else InputErrors(conflicts)
    return data, how


def _given(source: str | Path, field: str, flags: dict[str, str]) -> str:
    """How the user gave ``field``: ``--method``, ``--set method``, ``--config method``."""
    from taxopost.cli.task_options import BY_OPTION

    return flags[field] if source == BY_OPTION else f"{source} {field}"


def _canonical(value: Any) -> str:
    """A value as JSON, so that ``1`` and ``true`` (equal in Python) differ, and key order does not."""
    return json.dumps(value, sort_keys=True, default=str)


def _scope(capture_set: str | None, occurrence: int | None) -> tuple[str, int]:
    from taxopost.jobs.models import Job
    from taxopost.observations.models import CaptureSet

    if (capture_set is None) == (occurrence is None):
        raise InputError(
            "--capture-set/--occurrence", None, "give exactly one of --capture-set NAME or --occurrence ID"
        )
    if capture_set is not None:
        return Job.CAPTURE_SET, CaptureSet.named(capture_set).pk
    return Job.OCCURRENCE, int(occurrence)
