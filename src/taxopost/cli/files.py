"""``taxopost rollup`` and ``taxopost mask``: the core tasks on files, no database.

Command-line contract (other tools depend on it; extend it, do not change it)::

    taxopost rollup --taxonomy PATH [--id-column NAME] --category-map PATH (--scores PATH | --logits PATH)
                    [--threshold RANK=VALUE ...] [--mode lineage|distribution] --output PATH.csv
    taxopost mask   --taxonomy PATH [--id-column NAME] --category-map PATH (--scores PATH | --logits PATH)
                    --taxa-list PATH [--no-reweight] --output PATH.csv
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from taxopost.cli.app import app
from taxopost.cli.output import err, progress_bar, warn
from taxopost.cli.parsing import parse_rank_values
from taxopost.core.category_map import CategoryMap
from taxopost.core.masking import class_masking
from taxopost.core.rollup import rank_rollup
from taxopost.errors import InputError
from taxopost.io import read_category_map, read_matrix, read_taxa_list, read_taxonomy
from taxopost.io.results import check_output, write_atomically, write_masking_csv, write_rollup_csv
from taxopost.tasks import parse_config
from taxopost.tasks.rank_rollup import RankRollupConfig

TaxonomyOpt = Annotated[
    Path, typer.Option("--taxonomy", help="Taxonomy file: lineage CSV, iNaturalist or Darwin Core.")
]
IdColumnOpt = Annotated[
    str | None, typer.Option("--id-column", help="Lineage CSV column holding external ids (e.g. speciesKey).")
]
CategoryMapOpt = Annotated[
    Path, typer.Option("--category-map", help="Labels in class order: JSON list, {label: index} or [{index, label}].")
]
ScoresOpt = Annotated[Path | None, typer.Option("--scores", help="Probabilities: .npy, .npz, .parquet or .csv.")]
LogitsOpt = Annotated[Path | None, typer.Option("--logits", help="Logits (softmaxed before use), same formats.")]
OutputOpt = Annotated[Path, typer.Option("--output", help="Result CSV, one row per input row, in input order.")]
ExcludeOpt = Annotated[
    bool,
    typer.Option("--exclude-unresolved", help="Keep labels that resolve to no taxon out of predictions, not fail."),
]


@dataclass(frozen=True)
class Inputs:
    """What both commands read: a category map and a score (or logit) matrix."""

    category_map: CategoryMap
    values: np.ndarray
    logits: bool


def load_inputs(
    taxonomy: Path,
    id_column: str | None,
    category_map: Path,
    scores: Path | None,
    logits: Path | None,
    *,
    exclude_unresolved: bool = False,
) -> Inputs:
    """Read and validate the shared inputs; exactly one of ``scores`` and ``logits``."""
    if (scores is None) == (logits is None):
        raise InputError("--scores/--logits", None, "give exactly one of --scores PATH or --logits PATH")
    tax = read_taxonomy(taxonomy, id_column=id_column)
    cmap = read_category_map(category_map, tax, on_unresolved="exclude" if exclude_unresolved else "error")
    if cmap.unresolved:
        warn(f"{len(cmap.unresolved)} labels resolve to no taxon and are excluded: {list(cmap.unresolved[:5])}")
    path = scores or logits
    values = read_matrix(path, field="scores" if scores is not None else "logits")
    if values.shape[1] != cmap.n_classes:
        raise InputError(
            "columns",
            values.shape[1],
            f"the vectors have {values.shape[1]} values but the category map has {cmap.n_classes} classes",
            source=str(path),
        )
    return Inputs(cmap, values, logits is not None)


def _with_source(exc: InputError, path: Path | None) -> InputError:
    return exc.with_source(str(path)) if path is not None else exc


@app.command()
def rollup(
    taxonomy: TaxonomyOpt,
    category_map: CategoryMapOpt,
    output: OutputOpt,
    id_column: IdColumnOpt = None,
    scores: ScoresOpt = None,
    logits: LogitsOpt = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="RANK=VALUE, repeatable; replaces the defaults species=0.8 genus=0.6 family=0.4 "
            "(the ranks given are the ranks tried).",
        ),
    ] = None,
    order: Annotated[
        str | None, typer.Option("--order", help="Ranks to try, fine to coarse, comma-separated (default: thresholded)")
    ] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="lineage (only generalise) or distribution (best taxon per rank).")
    ] = None,
    exclude_unresolved: ExcludeOpt = False,
) -> None:
    """Roll unconfident predictions up to the first rank whose aggregate clears its threshold."""
    config_data: dict = {}
    if threshold:
        config_data["thresholds"] = parse_rank_values(threshold)
    if order:
        config_data["order"] = [rank.strip() for rank in order.split(",") if rank.strip()]
    if mode is not None:
        config_data["mode"] = mode
    config = parse_config(RankRollupConfig, config_data, prefix="--")
    check_output(output)
    inputs = load_inputs(taxonomy, id_column, category_map, scores, logits, exclude_unresolved=exclude_unresolved)
    with progress_bar("rolling up", total=inputs.values.shape[0]) as advance:
        try:
            result = rank_rollup(
                inputs.values,
                inputs.category_map,
                thresholds=config.thresholds,
                order=config.order,
                mode=config.mode,
                logits=inputs.logits,
                progress=advance,
            )
        except InputError as exc:
            raise _with_source(exc, scores or logits) from None
    write_rollup_csv(output, result, inputs.category_map.taxonomy)
    changed = int(result.changed.sum())
    err.print(f"{len(result)} rows, {changed} rolled up ({config.mode} mode) -> {output}", markup=False)


@app.command()
def mask(
    taxonomy: TaxonomyOpt,
    category_map: CategoryMapOpt,
    output: OutputOpt,
    taxa_list: Annotated[Path, typer.Option("--taxa-list", help="One taxon name or id per line (or --taxa-column).")],
    id_column: IdColumnOpt = None,
    scores: ScoresOpt = None,
    logits: LogitsOpt = None,
    reweight: Annotated[
        bool, typer.Option("--reweight/--no-reweight", help="Renormalise kept probabilities (default) or keep them.")
    ] = True,
    taxa_column: Annotated[
        str | None, typer.Option("--taxa-column", help="Read the taxa list from this column of a CSV.")
    ] = None,
    output_scores: Annotated[
        Path | None, typer.Option("--output-scores", help="Also write the masked probabilities (.npy).")
    ] = None,
    exclude_unresolved: ExcludeOpt = False,
) -> None:
    """Restrict predictions to a taxa list (a listed taxon admits its descendants) and recompute the winner."""
    check_output(output)  # both outputs are checked before any work: neither is written without the other
    if output_scores is not None:
        check_output(output_scores, "--output-scores")
    inputs = load_inputs(taxonomy, id_column, category_map, scores, logits, exclude_unresolved=exclude_unresolved)
    listed = read_taxa_list(taxa_list, inputs.category_map.taxonomy, column=taxa_column)
    if listed.unresolved:
        warn(
            f"{len(listed.unresolved)} of {len(listed.entries)} taxa-list entries match no taxon and are ignored: "
            f"{listed.unresolved[:5]}"
        )
    try:
        keep = inputs.category_map.admitted_by(listed.taxa)
    except InputError as exc:
        raise exc.with_source(str(taxa_list)) from None
    with progress_bar("masking", total=inputs.values.shape[0]) as advance:
        try:
            result = class_masking(
                inputs.values,
                inputs.category_map,
                keep,
                logits=inputs.logits,
                reweight=reweight,
                return_scores=output_scores is not None,
                progress=advance,
            )
        except InputError as exc:
            raise _with_source(exc, scores or logits) from None
    if output_scores is not None:

        def save(tmp: str) -> None:
            with open(tmp, "wb") as handle:  # a file, not a name: np.save would append ".npy" to a name
                np.save(handle, result.scores)

        write_atomically(output_scores, save, field="--output-scores")
    write_masking_csv(output, result, inputs.category_map)
    err.print(
        f"{len(result)} rows, {int(keep.sum())} of {inputs.category_map.n_classes} classes kept, "
        f"{int(result.changed.sum())} rows changed -> {output}",
        markup=False,
    )
