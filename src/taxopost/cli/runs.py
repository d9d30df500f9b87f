"""``taxopost run``: a post-processing task on a capture set or an occurrence, as a job.

Its task options are generated from the registered tasks (:mod:`taxopost.cli.task_options`)
each time the command is built, so a task registered by a plugin gets its options too.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer

from taxopost.cli.app import app
from taxopost.cli.jobs import follow_job
from taxopost.cli.parsing import parse_json_object, parse_settings
from taxopost.cli.task_options import config_from_options, parameters, task_options
from taxopost.django_setup import setup
from taxopost.errors import InputError
from taxopost.tasks import get_spec, task_keys


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
        return (
            "Run a post-processing task on a capture set or an occurrence, as a job.\n\n"
            f"Tasks: {', '.join(task_keys())}. Each task's options are listed below with its key; "
            "--set KEY=VALUE and --config JSON set any config field."
        )

    @property
    def __signature__(self) -> inspect.Signature:
        fixed = list(inspect.signature(_fixed, eval_str=True).parameters.values())
        return inspect.Signature([*fixed, *parameters(task_options())])

    def __call__(self, task: str, **given: Any) -> None:
        spec = get_spec(task)
        data = parse_json_object(given.pop("config"))
        data.update(parse_settings(given.pop("settings") or []))
        data.update(config_from_options(spec.key, task_options(), given))
        setup()
        from taxopost.postprocessing.running.operations import create_job, submit_job

        scope_type, scope_id = _scope(given["capture_set"], given["occurrence"])
        job = create_job(
            spec.key,
            scope_type,
            scope_id,
            data,
            dry_run=given["dry_run"],
            stack=given["stack"],
            chunk_size=given["chunk_size"],
        )
        follow_job(job, lambda executor: submit_job(job, executor))


run = app.command("run")(RunCommand())


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
