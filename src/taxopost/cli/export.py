"""``taxopost export``: the platform's results as files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from taxopost.cli.app import app
from taxopost.cli.output import err
from taxopost.django_setup import setup

export_app = typer.Typer(help="Export results.")
app.add_typer(export_app, name="export")


@export_app.command("occurrences")
def export_occurrences_cmd(
    capture_set: Annotated[str, typer.Option("--capture-set", help="Name of the capture set.")],
    output: Annotated[Path, typer.Option("--output", help="CSV or .parquet file (Darwin Core: CSV).")],
    layout: Annotated[
        str,
        typer.Option(
            "--format",
            help="occurrences (taxopost's columns) or dwc (a Darwin Core occurrence table, as GBIF publishers use).",
        ),
    ] = "occurrences",
) -> None:
    """Occurrences with their determination (rank, external ids), score, who decided, provenance and times."""
    setup()
    from taxopost.observations.export import export_occurrences

    n = export_occurrences(capture_set, output, layout=layout)
    err.print(f"{n} occurrences -> {output}")


@export_app.command("antenna")
def export_antenna_cmd(
    capture_set: Annotated[str, typer.Option("--capture-set", help="Name of the capture set.")],
    output: Annotated[Path, typer.Option("--output", help="JSON file: an Antenna processing-service response.")],
) -> None:
    """Detections and their classification chains as Antenna's PipelineResultsResponse, for Antenna to ingest."""
    setup()
    from taxopost.observations.antenna_results import export_antenna_results

    summary = export_antenna_results(capture_set, output)
    err.print(f"{summary} -> {output}", markup=False)
