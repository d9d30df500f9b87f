"""``taxopost import``: taxonomies, category maps, predictions, identifications, taxa lists, Antenna.

Each command reads its file, starts Django (the embedded SQLite database is created on first
use) and calls the importer the other entrances share; bad input names the file, field and value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from taxopost.cli.output import err, progress_bar, warn
from taxopost.cli.shared_options import TaxaColumnOpt
from taxopost.django_setup import setup
from taxopost.errors import InputError
from taxopost.io.antenna import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PAGE_SIZE,
    TOKEN_ENV,
    AntennaClient,
    AntennaSource,
    check_base_url,
    is_loopback,
    read_token,
)

#: Antenna's own TIME_ZONE setting unless its admins changed it.
ANTENNA_TIME_ZONE = "America/New_York"

import_app = typer.Typer(
    help="Import taxonomies, category maps, predictions, identifications, taxa lists.", add_completion=False
)
commands = import_app  # `taxopost import`, imported when used (cli/app.py)


@import_app.command("taxonomy")
def import_taxonomy_cmd(
    path: Annotated[Path, typer.Argument(help="Lineage CSV, iNaturalist taxonomy CSV or Darwin Core Taxon file.")],
    id_column: Annotated[str | None, typer.Option("--id-column", help="Lineage CSV column of external ids.")] = None,
) -> None:
    """Import (or extend) the taxonomy; taxa are matched by name."""
    setup()
    from taxopost.io import read_taxonomy
    from taxopost.taxa.operations import import_taxonomy

    taxonomy = read_taxonomy(path, id_column=id_column)
    with progress_bar("importing taxa", total=len(taxonomy)) as advance:
        summary = import_taxonomy(taxonomy, progress=advance)
    err.print(f"{len(taxonomy)} taxa: {summary.created} new, {summary.updated} updated, {summary.unchanged} unchanged")


@import_app.command("category-map")
def import_category_map_cmd(
    path: Annotated[
        Path, typer.Argument(help="Labels in class order (JSON list, {label: index} or [{index, label}]).")
    ],
    algorithm: Annotated[str, typer.Option("--algorithm", help="Key of the classifier these labels belong to.")],
    name: Annotated[str | None, typer.Option("--name", help="Readable name of the classifier.")] = None,
    version: Annotated[str, typer.Option("--version", help="Classifier version.")] = "",
    exclude_unresolved: Annotated[
        bool, typer.Option("--exclude-unresolved", help="Store labels that match no taxon as excluded classes.")
    ] = False,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id-column",
            help="taxon_id or leaf_class_id: how labels of an iNaturalist model resolve (default: detected).",
        ),
    ] = None,
) -> None:
    """Register a classifier and its label space, resolved against the imported taxonomy."""
    setup()
    from django.db import transaction

    from taxopost.io import read_labels
    from taxopost.ml.operations import get_or_create_algorithm, import_category_map

    labels = read_labels(path)
    with transaction.atomic():
        try:
            category_map, new_map = import_category_map(
                labels, on_unresolved="exclude" if exclude_unresolved else "error", id_column=id_column
            )
        except InputError as exc:
            raise exc.with_source(str(path)) from None
        algo, new_algo = get_or_create_algorithm(algorithm, name=name, version=version, category_map=category_map)
    excluded = sum(t is None for t in category_map.taxa)
    if excluded:
        warn(f"{excluded} labels resolve to no taxon and are excluded")
    err.print(
        f"algorithm {algo.key}: {'registered' if new_algo else 'already registered'}; "
        f"category map of {category_map.n_classes} classes {'stored' if new_map else 'already stored'}"
    )


@import_app.command("predictions")
def import_predictions_cmd(
    path: Annotated[
        Path,
        typer.Argument(help="JSON Lines (.jsonl), Parquet (.parquet), or a MegaDetector, SpeciesNet or Antenna file."),
    ],
    format: Annotated[
        str | None,
        typer.Option("--format", help="megadetector, speciesnet or antenna (default: detected in a .json file)."),
    ] = None,
    capture_set: Annotated[
        str | None, typer.Option("--capture-set", help="Capture set of a MegaDetector, SpeciesNet or Antenna file.")
    ] = None,
    algorithm: Annotated[
        str | None, typer.Option("--algorithm", help="Key of the file's classifier (default: named by the file).")
    ] = None,
    project: Annotated[str | None, typer.Option("--project", help="Project of the file's images.")] = None,
    lineage_ranks: Annotated[
        str | None,
        typer.Option("--lineage-ranks", help="Ranks of plain-lineage MegaDetector descriptions, coarse to fine."),
    ] = None,
) -> None:
    """Import model predictions: images, detections, occurrences and classifications (idempotent)."""
    setup()
    from taxopost.io.predictions.detections import parse_ranks
    from taxopost.observations.predictions import import_predictions

    ranks = parse_ranks(lineage_ranks, "--lineage-ranks") if lineage_ranks else None
    total = _count_records(path) if path.suffix.lower() in (".jsonl", ".parquet") else None
    with progress_bar("importing predictions", total=total) as advance:
        summary = import_predictions(
            path,
            format=format,
            capture_set=capture_set,
            algorithm=algorithm,
            project=project,
            lineage_ranks=ranks,
            progress=advance,
        )
    err.print(str(summary))


@import_app.command("identifications")
def import_identifications_cmd(
    path: Annotated[Path, typer.Argument(help="CSV: taxon and occurrence (or image + detection), who, created_at.")],
    project: Annotated[str, typer.Option("--project", help="Project the occurrences belong to.")] = "default",
) -> None:
    """Import human identifications (ground truth); determinations are recomputed."""
    setup()
    from taxopost.observations.identifications import import_identifications

    err.print(str(import_identifications(path, project=project)))


@import_app.command("taxa-list")
def import_taxa_list_cmd(
    path: Annotated[Path, typer.Argument(help="One taxon name or id per line, or a CSV with --taxa-column.")],
    name: Annotated[str, typer.Option("--name", help="Name of the taxa list.")],
    column: TaxaColumnOpt = None,
    old_column: Annotated[str | None, typer.Option("--column", hidden=True)] = None,  # its former name
) -> None:
    """Create or replace a taxa list (a listed taxon admits its descendants)."""
    setup()
    from taxopost.io import read_taxa_list
    from taxopost.taxa.operations import import_taxa_list, load_taxonomy

    taxonomy = load_taxonomy()
    listed = read_taxa_list(path, taxonomy.core, column=column or old_column)
    if listed.unresolved:
        hint = f"; {listed.hint}" if listed.hint else ""
        warn(f"{len(listed.unresolved)} entries match no taxon and are ignored: {listed.unresolved[:5]}{hint}")
    taxa_list, changed = import_taxa_list(name, [int(taxonomy.db_ids[t]) for t in listed.taxa])
    err.print(f"taxa list {taxa_list.name!r}: {len(listed.taxa)} taxa ({'saved' if changed else 'unchanged'})")


@import_app.command("antenna")
def import_antenna_cmd(
    url: Annotated[str, typer.Option("--url", help="Antenna's API root, e.g. https://antenna.example.org/api/v2.")],
    project: Annotated[int, typer.Option("--project", help="Antenna project id.", min=1)],
    capture_set: Annotated[int, typer.Option("--capture-set", help="Antenna capture set (collection) id.", min=1)],
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help=f"File holding the API token (else ${TOKEN_ENV}; never an option)."),
    ] = None,
    timezone: Annotated[
        str,
        typer.Option("--timezone", help="The server's TIME_ZONE: Antenna's timestamps are naive local times."),
    ] = ANTENNA_TIME_ZONE,
    project_name: Annotated[
        str | None, typer.Option("--project-name", help="Name of the project here (default: Antenna's).")
    ] = None,
    capture_set_name: Annotated[
        str | None, typer.Option("--capture-set-name", help="Name of the capture set here (default: Antenna's).")
    ] = None,
    allow_http: Annotated[
        bool, typer.Option("--allow-http", help="Allow plain http to a host other than this machine.")
    ] = False,
    every_capture: Annotated[
        bool,
        typer.Option(
            "--every-capture",
            help="Read every capture's detail to find detections in no occurrence (Antenna's cached counts can lag).",
        ),
    ] = False,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="Detail requests in flight at once.", min=1, max=64)
    ] = DEFAULT_CONCURRENCY,
    page_size: Annotated[int, typer.Option("--page-size", help="Rows per list page.", min=1, max=1000)] = (
        DEFAULT_PAGE_SIZE
    ),
) -> None:
    """Import an Antenna capture set: taxa, category maps, images, detections, occurrences,
    classifications with their vectors, and identifications (one transaction; re-runs add what is new)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError("--timezone", timezone, "not a time zone name such as America/New_York") from None
    token = read_token(token_file)
    base = check_base_url(url, allow_http=allow_http)
    if token is None:
        warn(f"no token (--token-file or ${TOKEN_ENV}): reading anonymously, which shows public projects only")
    elif base.startswith("http://") and not is_loopback(urlsplit(base).hostname or ""):
        warn("--allow-http: the token travels in clear text")
    setup()
    from taxopost.observations.antenna import import_antenna

    with (
        AntennaClient(base, token=token, allow_http=allow_http, concurrency=concurrency, page_size=page_size) as client,
        progress_bar("importing from Antenna", total=None) as bar,
    ):
        source = AntennaSource(client, project, capture_set, zone=zone)
        summary = import_antenna(
            source,
            project_name=project_name,
            capture_set_name=capture_set_name,
            every_capture=every_capture,
            progress=lambda done, total: bar.update(completed=done, total=total, description="occurrences"),
        )
    for line in summary.lines():
        err.print(line, markup=False, soft_wrap=True)


def _count_records(path: Path) -> int:
    if not path.is_file():  # missing, a device or a pipe: the importer refuses it with a message
        return 0
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception:  # unreadable: the importer reports it properly
            return 0
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())
