"""``taxopost rollup`` and ``taxopost mask``: the core tasks on files, no database.

Command-line contract (other tools depend on it; extend it, do not change it)::

    taxopost rollup --taxonomy PATH [--id-column NAME] --category-map PATH (--scores PATH | --logits PATH)
                    [--threshold RANK=VALUE ...] [--mode lineage|distribution] [--config CAL.json] --output PATH.csv
    taxopost mask   --taxonomy PATH [--id-column NAME] --category-map PATH (--scores PATH | --logits PATH)
                    --taxa-list PATH [--taxa-column NAME] [--no-reweight] [--winner-changes-only] --output PATH.csv
    taxopost rollup|mask --predictions FILE [--format megadetector|speciesnet|antenna] [--lineage-ranks R,R,...]
                    [--taxonomy PATH] ... --output (PATH.json | PATH.csv)

With ``--predictions`` the file's own label space (and, for MegaDetector descriptions and
SpeciesNet labels, its taxonomy) replaces the category map; ``--output FILE.json`` writes the
input's format back with the results, ``--output FILE.csv`` the table. On a file it wrote, a
command reads past its own earlier output and replaces it (re-running changes only what the new
config decides differently), and chains on the other command's (docs/formats.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from taxopost.cli.output import err, progress_bar, warn
from taxopost.cli.parsing import parse_rank_values
from taxopost.cli.shared_options import TaxaColumnOpt
from taxopost.cli.task_options import BY_OPTION, named_by_options, task_options
from taxopost.errors import TOO_DEEP, InputError
from taxopost.io.predictions.formats import FORMATS
from taxopost.io.results import check_not_an_input, check_output

# The readers, the core and the writers are imported by the commands, not by every command's start.
if TYPE_CHECKING:
    from taxopost.core.category_map import CategoryMap
    from taxopost.core.sparse import SparseRows
    from taxopost.io.predictions.detections import DetectionFile

commands = typer.Typer(add_completion=False, pretty_exceptions_enable=False)  # imported when used (cli/app.py)


TaxonomyOpt = Annotated[
    Path | None,
    typer.Option(
        "--taxonomy",
        help="Taxonomy file: lineage CSV, iNaturalist or Darwin Core (not needed with --predictions that carry one).",
    ),
]
IdColumnOpt = Annotated[
    str | None,
    typer.Option(
        "--id-column",
        help="Column of external ids (lineage CSV: e.g. speciesKey; iNaturalist: taxon_id or leaf_class_id).",
    ),
]
CategoryMapOpt = Annotated[
    Path | None,
    typer.Option("--category-map", help="Labels in class order: JSON list, {label: index} or [{index, label}]."),
]
ScoresOpt = Annotated[Path | None, typer.Option("--scores", help="Probabilities: .npy, .npz, .parquet or .csv.")]
LogitsOpt = Annotated[Path | None, typer.Option("--logits", help="Logits (softmaxed before use), same formats.")]
PredictionsOpt = Annotated[
    Path | None,
    typer.Option("--predictions", help="A MegaDetector batch, SpeciesNet or Antenna processing-service JSON file."),
]
FormatOpt = Annotated[
    str | None, typer.Option("--format", help=f"The --predictions format: {', '.join(FORMATS)} (default: detected).")
]
LineageRanksOpt = Annotated[
    str | None,
    typer.Option(
        "--lineage-ranks",
        help="Ranks of plain-lineage MegaDetector descriptions, coarse to fine "
        "(e.g. kingdom,phylum,class,order,family,species).",
    ),
]
OutputOpt = Annotated[
    Path,
    typer.Option(
        "--output",
        help="Result CSV (one row per input row, in input order), or with --predictions FILE.json its format.",
    ),
]
#: What --output of rollup and mask writes: the table, or (.json) a --predictions file's own format.
RESULT_SUFFIXES = (".csv", ".parquet", ".json")

ExcludeOpt = Annotated[
    bool,
    typer.Option("--exclude-unresolved", help="Keep labels that resolve to no taxon out of predictions, not fail."),
]


@dataclass(frozen=True)
class Inputs:
    """What the file commands read: a category map and score (or logit) rows, and the file they came from."""

    category_map: CategoryMap
    values: np.ndarray | SparseRows
    logits: bool
    source: Path
    detections: DetectionFile | None = None

    def locate(self, exc: InputError) -> InputError:
        """An error about the rows, told by file (and JSON path for a --predictions file)."""
        return self.detections.locate(exc) if self.detections is not None else exc.with_source(str(self.source))


def load_inputs(
    taxonomy: Path | None,
    id_column: str | None,
    category_map: Path | None,
    scores: Path | None,
    logits: Path | None,
    *,
    predictions: Path | None = None,
    format: str | None = None,
    lineage_ranks: str | None = None,
    exclude_unresolved: bool = False,
    task: str | None = None,
) -> Inputs:
    """Read and validate the shared inputs: exactly one of ``scores``, ``logits`` and ``predictions``.

    ``task`` is the task about to run on a ``predictions`` file, whose earlier output in the file
    it then reads past, to replace it (``read_detection_file``).
    """
    from taxopost.core.category_map import CategoryMap
    from taxopost.io import read_labels, read_matrix
    from taxopost.io.taxonomy import read_taxonomy_for_labels

    given = [
        name for name, value in (("--scores", scores), ("--logits", logits), ("--predictions", predictions)) if value
    ]
    if len(given) != 1:
        raise InputError(
            "/".join(given) or "--scores/--logits/--predictions",
            None,
            "give exactly one of --scores PATH, --logits PATH or --predictions FILE",
        )
    if predictions is not None:
        return _load_predictions(
            predictions, format, lineage_ranks, taxonomy, id_column, category_map, exclude_unresolved, task
        )
    for option, value in (("--format", format), ("--lineage-ranks", lineage_ranks)):
        if value is not None:
            raise InputError(option, value, "only with --predictions")
    if taxonomy is None or category_map is None:
        missing = "--taxonomy" if taxonomy is None else "--category-map"
        raise InputError(missing, None, f"required with {given[0]}")
    labels = read_labels(category_map)
    tax = read_taxonomy_for_labels(taxonomy, labels, id_column=id_column)
    try:
        cmap = CategoryMap(labels, tax, on_unresolved="exclude" if exclude_unresolved else "error")
    except InputError as exc:
        raise exc.with_source(str(category_map)) from None
    _warn_unresolved(cmap)
    path = scores or logits
    values = read_matrix(path, field="scores" if scores is not None else "logits")
    if values.shape[1] != cmap.n_classes:
        raise InputError(
            "columns",
            values.shape[1],
            f"the vectors have {values.shape[1]} values but the category map has {cmap.n_classes} classes",
            source=str(path),
        )
    return Inputs(cmap, values, logits is not None, path)


def _load_predictions(
    path: Path,
    format: str | None,
    lineage_ranks: str | None,
    taxonomy: Path | None,
    id_column: str | None,
    category_map: Path | None,
    exclude_unresolved: bool,
    task: str | None = None,
) -> Inputs:
    from taxopost.io.predictions.detections import parse_ranks
    from taxopost.io.predictions.formats import read_detection_file
    from taxopost.io.taxonomy import read_taxonomy_for_labels

    if category_map is not None:
        raise InputError("--category-map", str(category_map), "a --predictions file carries its own classes")
    ranks = parse_ranks(lineage_ranks, "--lineage-ranks") if lineage_ranks else None
    file = read_detection_file(path, format=format, lineage_ranks=ranks, task=task)
    if len(file.scores) == 0:
        raise InputError("file", str(path), f"this {file.format} file has no classification to post-process")
    tax = None
    if taxonomy is not None:
        # The labels alone choose an iNaturalist file's id column: a GBIF key never resolves to its ids.
        tax = read_taxonomy_for_labels(taxonomy, list(file.labels), id_column=id_column)
    cmap = file.category_map(tax, on_unresolved="exclude" if exclude_unresolved else "error")
    _warn_unresolved(cmap)
    return Inputs(cmap, file.scores, False, path, file)


def _warn_unresolved(cmap: CategoryMap) -> None:
    if cmap.unresolved:
        warn(f"{len(cmap.unresolved)} labels resolve to no taxon and are excluded: {list(cmap.unresolved[:5])}")


def _read_config(path: Path | None) -> dict:
    """A rank roll-up config (thresholds, order, mode), as ``taxopost calibrate`` writes it."""
    if path is None:
        return {}
    from taxopost.io import check_file

    check_file(path, "--config")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError("--config", str(path), f"cannot be read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("--config", str(path), f"is not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError("--config", str(path), TOO_DEEP) from None
    if not isinstance(data, dict):
        raise InputError("--config", str(path), "must hold a JSON object: {thresholds, order, mode}")
    return data


@commands.command()
def rollup(
    output: OutputOpt,
    taxonomy: TaxonomyOpt = None,
    category_map: CategoryMapOpt = None,
    id_column: IdColumnOpt = None,
    scores: ScoresOpt = None,
    logits: LogitsOpt = None,
    predictions: PredictionsOpt = None,
    format: FormatOpt = None,
    lineage_ranks: LineageRanksOpt = None,
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
    config: Annotated[
        Path | None,
        typer.Option("--config", help="A roll-up config JSON (thresholds, order, mode), e.g. from taxopost calibrate."),
    ] = None,
    exclude_unresolved: ExcludeOpt = False,
) -> None:
    """Roll unconfident predictions up to the first rank whose aggregate clears its threshold."""
    from taxopost.core.rollup import STATUSES, rank_rollup, rollup_status
    from taxopost.io.predictions.formats import write_detection_file
    from taxopost.io.predictions.revision import Revision
    from taxopost.io.results import write_rollup_csv
    from taxopost.tasks import parse_config
    from taxopost.tasks.rank_rollup import RankRollupConfig, RankRollupSpec

    config_data = _read_config(config)
    how: dict[str, str | Path] = dict.fromkeys(config_data, config) if config is not None else {}
    if threshold:
        config_data["thresholds"] = parse_rank_values(threshold)
        config_data.pop("order", None)  # the ranks given are the ranks tried
    if order:
        config_data["order"] = [rank.strip() for rank in order.split(",") if rank.strip()]
    if mode is not None:
        config_data["mode"] = mode
    how.update(
        {field: BY_OPTION for field, given in (("thresholds", threshold), ("order", order), ("mode", mode)) if given}
    )
    try:
        settings = parse_config(RankRollupConfig, config_data, prefix="config.")
    except InputError as exc:
        raise named_by_options(exc, task_options([RankRollupSpec]), how) from None
    check_output(output, suffixes=RESULT_SUFFIXES)
    # A --predictions file may be written back in place: the re-run replaces its own step.
    read = {"--taxonomy": taxonomy, "--category-map": category_map, "--scores": scores, "--logits": logits}
    check_not_an_input(output, "--output", {**read, "--config": config})
    inputs = load_inputs(
        taxonomy, id_column, category_map, scores, logits,
        predictions=predictions, format=format, lineage_ranks=lineage_ranks, exclude_unresolved=exclude_unresolved,
        task="rank_rollup",
    )  # fmt: skip
    writes_format = _writes_format(inputs, output)
    with progress_bar("rolling up", total=inputs.values.shape[0]) as advance:
        try:
            result = rank_rollup(
                inputs.values,
                inputs.category_map,
                thresholds=settings.thresholds,
                order=settings.order,
                mode=settings.mode,
                logits=inputs.logits,
                progress=advance,
            )
        except InputError as exc:
            raise inputs.locate(exc) if exc.field.startswith(("scores", "logits")) else exc from None
    _warn_coarser(inputs.category_map, result.order)
    if writes_format:
        write_detection_file(output, inputs.detections, Revision.of_rollup(result, inputs.category_map))
    else:
        write_rollup_csv(output, result, inputs.category_map.taxonomy, detections=_paths(inputs))
    counts = np.bincount(rollup_status(result), minlength=len(STATUSES))
    summary = ", ".join(f"{int(n)} {status}" for status, n in zip(STATUSES, counts, strict=True))
    err.print(f"{len(result)} rows: {summary} ({settings.mode} mode) -> {output}", markup=False)


@commands.command()
def mask(
    output: OutputOpt,
    taxa_list: Annotated[Path, typer.Option("--taxa-list", help="One taxon name or id per line (or --taxa-column).")],
    taxonomy: TaxonomyOpt = None,
    category_map: CategoryMapOpt = None,
    id_column: IdColumnOpt = None,
    scores: ScoresOpt = None,
    logits: LogitsOpt = None,
    predictions: PredictionsOpt = None,
    format: FormatOpt = None,
    lineage_ranks: LineageRanksOpt = None,
    reweight: Annotated[
        bool, typer.Option("--reweight/--no-reweight", help="Renormalise kept probabilities (default) or keep them.")
    ] = True,
    taxa_column: TaxaColumnOpt = None,
    winner_changes_only: Annotated[
        bool,
        typer.Option(
            "--winner-changes-only", help="Count (and write back) a row as changed only when its winning taxon changes."
        ),
    ] = False,
    output_scores: Annotated[
        Path | None, typer.Option("--output-scores", help="Also write the masked probabilities (.npy).")
    ] = None,
    exclude_unresolved: ExcludeOpt = False,
) -> None:
    """Restrict predictions to a taxa list (a listed taxon admits its descendants) and recompute the winner."""
    from taxopost.core.coverage import class_mass, mask_coverage
    from taxopost.core.masking import class_masking
    from taxopost.core.sparse import SparseRows
    from taxopost.io import read_taxa_list
    from taxopost.io.predictions.formats import write_detection_file
    from taxopost.io.predictions.revision import Revision
    from taxopost.io.results import write_atomically, write_masking_csv

    check_output(output, suffixes=RESULT_SUFFIXES)  # both outputs are checked before any work
    read = {"--taxonomy": taxonomy, "--category-map": category_map, "--scores": scores, "--logits": logits,
            "--taxa-list": taxa_list}  # fmt: skip
    check_not_an_input(output, "--output", read)  # a --predictions file may be written back in place
    if output_scores is not None:
        check_output(output_scores, "--output-scores", suffixes=(".npy",))  # NumPy's format, so named
        check_not_an_input(output_scores, "--output-scores", {**read, "--predictions": predictions, "--output": output})
    inputs = load_inputs(
        taxonomy, id_column, category_map, scores, logits,
        predictions=predictions, format=format, lineage_ranks=lineage_ranks, exclude_unresolved=exclude_unresolved,
        task="class_masking",
    )  # fmt: skip
    writes_format = _writes_format(inputs, output)
    listed = read_taxa_list(taxa_list, inputs.category_map.taxonomy, column=taxa_column)
    if listed.unresolved:
        warn(
            f"{len(listed.unresolved)} of {len(listed.entries)} taxa-list entries match no taxon and are ignored: "
            f"{listed.unresolved[:5]}" + (f"; {listed.hint}" if listed.hint else "")
        )
    try:
        keep = inputs.category_map.admitted_by(listed.taxa)
    except InputError as exc:
        raise exc.with_source(str(taxa_list)) from None
    try:
        mass = class_mass(inputs.values, inputs.category_map, logits=inputs.logits)
    except InputError as exc:
        raise inputs.locate(exc) if exc.field.startswith(("scores", "logits")) else exc from None
    coverage = mask_coverage(keep, inputs.category_map, mass, rows=inputs.values.shape[0])
    if coverage.low:
        warn(coverage.warning())
    with progress_bar("masking", total=inputs.values.shape[0]) as advance:
        try:
            result = class_masking(
                inputs.values,
                inputs.category_map,
                keep,
                logits=inputs.logits,
                reweight=reweight,
                winner_only=winner_changes_only,
                return_scores=output_scores is not None or writes_format,
                progress=advance,
            )
        except InputError as exc:
            raise inputs.locate(exc) if exc.field.startswith(("scores", "logits")) else exc from None
    if output_scores is not None:
        masked = result.scores.dense() if isinstance(result.scores, SparseRows) else result.scores

        def save(tmp: str) -> None:
            with open(tmp, "wb") as handle:  # a file, not a name: np.save would append ".npy" to a name
                np.save(handle, masked)

        write_atomically(output_scores, save, field="--output-scores")
    if writes_format:
        write_detection_file(output, inputs.detections, Revision.of_masking(result, inputs.category_map))
    else:
        write_masking_csv(output, result, inputs.category_map, detections=_paths(inputs))
    changed = int(result.changed.sum())
    err.print(f"{len(result)} rows, kept {coverage.summary()}; {changed} rows changed -> {output}", markup=False)


def _warn_coarser(category_map: CategoryMap, order: tuple[str, ...]) -> None:
    """Classes above every thresholded rank never count toward a roll-up: say so, they are often a mistake."""
    from taxopost.core.rollup import coarser_than_order

    above = np.flatnonzero(coarser_than_order(category_map, order))
    if above.size:
        taxonomy, taxa = category_map.taxonomy, category_map.class_taxa
        shown = [f"{taxonomy.names[taxa[c]]} ({taxonomy.rank_of(int(taxa[c]))})" for c in above[:5]]
        warn(
            f"{above.size} classes resolve to a rank coarser than every thresholded rank ({', '.join(order)}) "
            f"and add to no aggregate: {', '.join(shown)}"
        )


def _writes_format(inputs: Inputs, output: Path) -> bool:
    """``--output FILE.json`` after ``--predictions``: the input's own format, results included
    (refused before any work when the file could not be written back valid)."""
    from taxopost.io.predictions.formats import check_writable

    if output.suffix.lower() != ".json":
        return False
    if inputs.detections is None:
        raise InputError("--output", str(output), "a .json output writes the format of a --predictions file; give .csv")
    check_writable(inputs.detections)
    return True


def _paths(inputs: Inputs) -> list[str] | None:
    """The JSON path of each row's detection, for the CSV of a --predictions file."""
    file = inputs.detections
    return None if file is None else [file.where(row) for row in range(len(file.scores))]
