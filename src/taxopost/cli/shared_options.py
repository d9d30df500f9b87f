"""Option declarations several commands share, so that one option has one name everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

#: The CSV column of a taxa list (``taxopost mask`` and ``taxopost import taxa-list``); the hint
#: of :func:`taxopost.io.read_taxa_list` names it (``COLUMN_OPTION``).
TaxaColumnOpt = Annotated[
    str | None,
    typer.Option("--taxa-column", help="The CSV column holding the taxa list's names (e.g. Current_valid_binomen)."),
]
