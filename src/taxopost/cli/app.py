"""The ``taxopost`` typer app that every command module registers its commands on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="taxopost",
    help="Post-processing of species-classifier predictions: rank roll-up, class masking, "
    "small-size filter, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
