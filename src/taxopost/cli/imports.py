"""``taxopost import``: taxonomies, category maps, predictions, identifications and taxa lists.

Each command reads its file, starts Django (the embedded SQLite database is created on first
use) and calls the importer the other entrances share; bad input names the file, field and value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from taxopost.cli.app import app
from taxopost.cli.output import err, progress_bar, warn
from taxopost.django_setup import setup
from taxopost.errors import InputError

import_app = typer.Typer(help="Import taxonomies, category maps, predictions, identifications, taxa lists.")
app.add_typer(import_app, name="import")


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
                labels, on_unresolved="exclude" if exclude_unresolved else "error"
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
    path: Annotated[Path, typer.Argument(help="One taxon name or id per line, or a CSV with --column.")],
    name: Annotated[str, typer.Option("--name", help="Name of the taxa list.")],
    column: Annotated[str | None, typer.Option("--column", help="CSV column holding the names.")] = None,
) -> None:
    """Create or replace a taxa list (a listed taxon admits its descendants)."""
    setup()
    from taxopost.io import read_taxa_list
    from taxopost.taxa.operations import import_taxa_list, load_taxonomy

    taxonomy = load_taxonomy()
    listed = read_taxa_list(path, taxonomy.core, column=column)
    if listed.unresolved:
        warn(f"{len(listed.unresolved)} entries match no taxon and are ignored: {listed.unresolved[:5]}")
    taxa_list, changed = import_taxa_list(name, [int(taxonomy.db_ids[t]) for t in listed.taxa])
    err.print(f"taxa list {taxa_list.name!r}: {len(listed.taxa)} taxa ({'saved' if changed else 'unchanged'})")


def _count_records(path: Path) -> int:
    if path.suffix.lower() == ".parquet" and path.exists():
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception:  # unreadable: the importer reports it properly
            return 0
    if path.exists():
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    return 0
