"""``taxopost evaluate`` and ``taxopost calibrate``: post-processing measured against ground truth.

Command-line contract (other tools depend on it; extend it, do not change it)::

    taxopost evaluate  --taxonomy PATH [--id-column NAME] --category-map PATH (--scores PATH | --logits PATH)
                       --ground-truth PATH --pipelines PATH --output-dir DIR [--groups PATH]
    taxopost calibrate --taxonomy PATH [--id-column NAME] --category-map PATH (--scores PATH | --logits PATH)
                       --ground-truth PATH [--target-precision 0.95 | --target-precision RANK=0.95 ...]
                       [--delta 0.1] [--calibration-fraction 0.5] [--seed 0] [--mode lineage|distribution]
                       [--order RANK,RANK] --output PATH.json [--output-dir DIR] [--groups PATH]

Both also take ``--predictions FILE [--format ...]`` instead of the category map and scores (as
``taxopost rollup`` does); the ground truth then has one row per classified detection.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.table import Table

from taxopost.cli.files import (
    CategoryMapOpt,
    ExcludeOpt,
    FormatOpt,
    IdColumnOpt,
    LineageRanksOpt,
    LogitsOpt,
    PredictionsOpt,
    ScoresOpt,
    TaxonomyOpt,
    load_inputs,
)
from taxopost.cli.output import err, fail, out, progress_bar, warn
from taxopost.errors import TOO_DEEP, InputError
from taxopost.evaluation.sweep import DEFAULT_GRID
from taxopost.io.results import check_not_an_input, check_not_in_output_dir, check_output, write_bytes_atomically
from taxopost.tasks.rank_rollup import DEFAULT_ROLLUP_MODE

# scipy.stats and matplotlib are imported by the commands that use them, not by every command's start.
if TYPE_CHECKING:
    from taxopost.cli.files import Inputs
    from taxopost.evaluation.calibration import CalibrationReport
    from taxopost.evaluation.evaluate import Evaluation

commands = typer.Typer(add_completion=False, pretty_exceptions_enable=False)  # imported when used (cli/app.py)


GroundTruthOpt = Annotated[
    Path,
    typer.Option(
        "--ground-truth",
        help="True taxa: a CSV with a 'label' column (taxon name or id, one row per score row), "
        "or a .npy of class indices.",
    ),
]

GroupsOpt = Annotated[
    Path | None,
    typer.Option(
        "--groups",
        help="The occurrence of each score row: a .npy of ids, or a CSV with an 'occurrence' (or 'group') column. "
        "Enables occurrence_consensus steps and per-occurrence metrics; calibrate splits whole occurrences.",
    ),
]

# The options both calibrate commands take.
ConfigOutputOpt = Annotated[
    Path, typer.Option("--output", help="The rank roll-up config (JSON: thresholds, order, mode) to write.")
]
TargetPrecisionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target-precision",
        help="Target precision: one value for every rank (0.95), or RANK=VALUE, repeatable. Default 0.95.",
    ),
]
DeltaOpt = Annotated[float, typer.Option("--delta", help="The guarantee holds with probability at least 1 - delta.")]
CalibrationFractionOpt = Annotated[
    float, typer.Option("--calibration-fraction", help="Share of rows used to calibrate; the rest is held out.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the random calibration/held-out split.")]
CalibrationOrderOpt = Annotated[
    str | None,
    typer.Option("--order", help="Ranks to calibrate, fine to coarse, comma-separated (default: from the data)."),
]
CalibrationReportOpt = Annotated[
    Path | None, typer.Option("--output-dir", help="Also write calibration.json, a figure and report.html.")
]


@commands.command()
def evaluate(
    ground_truth: GroundTruthOpt,
    pipelines: Annotated[
        Path, typer.Option("--pipelines", help='JSON or YAML: [{"name": ..., "steps": [{"task": ..., ...}]}].')
    ],
    output_dir: Annotated[
        Path, typer.Option("--output-dir", help="Receives metrics.json, report.html and the figures (PNG).")
    ],
    taxonomy: TaxonomyOpt = None,
    category_map: CategoryMapOpt = None,
    id_column: IdColumnOpt = None,
    scores: ScoresOpt = None,
    logits: LogitsOpt = None,
    predictions: PredictionsOpt = None,
    format: FormatOpt = None,
    lineage_ranks: LineageRanksOpt = None,
    bins: Annotated[int, typer.Option("--bins", help="Input-confidence bins (1 to 1000).", min=1, max=1000)] = 10,
    sweep_points: Annotated[
        int, typer.Option("--sweep-points", help="Thresholds in the risk-coverage sweep (1.0 down to 0.01).", min=2)
    ] = DEFAULT_GRID.size,
    exclude_unresolved: ExcludeOpt = False,
    groups: GroupsOpt = None,
) -> None:
    """Evaluate pipelines of post-processing steps side by side against ground truth."""
    from taxopost.evaluation.evaluate import evaluate_pipelines, evaluation_passes
    from taxopost.evaluation.ground_truth import read_ground_truth
    from taxopost.evaluation.pipelines import check_groups_given, read_pipelines
    from taxopost.evaluation.report import EVALUATION_FILES, output_dir_kept_on_success, write_evaluation
    from taxopost.io.groups import read_groups

    read = {"--taxonomy": taxonomy, "--category-map": category_map, "--scores": scores, "--logits": logits,
            "--predictions": predictions, "--ground-truth": ground_truth, "--pipelines": pipelines,
            "--groups": groups}  # fmt: skip
    check_not_in_output_dir(output_dir, EVALUATION_FILES, read)
    inputs = load_inputs(
        taxonomy, id_column, category_map, scores, logits,
        predictions=predictions, format=format, lineage_ranks=lineage_ranks, exclude_unresolved=exclude_unresolved,
    )  # fmt: skip
    n_rows = inputs.values.shape[0]
    y_true = read_ground_truth(ground_truth, inputs.category_map, n_rows=n_rows)
    occurrence = None if groups is None else read_groups(groups, n_rows=n_rows)
    parsed = read_pipelines(pipelines, inputs.category_map)
    if occurrence is None:
        try:
            check_groups_given(parsed)
        except InputError as exc:
            raise exc.with_source(str(pipelines)) from None
    for pipeline in parsed:
        for message in pipeline.warnings:
            warn(message)
    grid = DEFAULT_GRID if sweep_points == DEFAULT_GRID.size else _grid(sweep_points)
    with (
        output_dir_kept_on_success(output_dir, EVALUATION_FILES),
        progress_bar("evaluating", total=n_rows * evaluation_passes(parsed)) as advance,
    ):
        try:
            evaluation = evaluate_pipelines(
                inputs.values,
                inputs.category_map,
                y_true,
                parsed,
                logits=inputs.logits,
                groups=occurrence,
                n_bins=bins,
                grid=grid,
                progress=advance,
            )
        except InputError as exc:
            raise _located(exc, inputs, groups) from None
        written = write_evaluation(evaluation, output_dir)
    print_evaluation(evaluation, title=f"{n_rows:,} rows")
    err.print(f"wrote {', '.join(sorted(written))} -> {output_dir}", markup=False)


@commands.command()
def calibrate(
    ground_truth: GroundTruthOpt,
    output: ConfigOutputOpt,
    taxonomy: TaxonomyOpt = None,
    category_map: CategoryMapOpt = None,
    id_column: IdColumnOpt = None,
    scores: ScoresOpt = None,
    logits: LogitsOpt = None,
    predictions: PredictionsOpt = None,
    format: FormatOpt = None,
    lineage_ranks: LineageRanksOpt = None,
    target_precision: TargetPrecisionOpt = None,
    delta: DeltaOpt = 0.1,
    calibration_fraction: CalibrationFractionOpt = 0.5,
    seed: SeedOpt = 0,
    mode: Annotated[
        str, typer.Option("--mode", help="lineage (only generalise) or distribution (best taxon per rank).")
    ] = DEFAULT_ROLLUP_MODE,
    order: CalibrationOrderOpt = None,
    output_dir: CalibrationReportOpt = None,
    exclude_unresolved: ExcludeOpt = False,
    groups: GroupsOpt = None,
) -> int:
    """Choose per-rank roll-up thresholds that reach a target precision, with a finite-sample guarantee."""
    from taxopost.evaluation.ground_truth import read_ground_truth
    from taxopost.io.groups import read_groups

    settings = _CalibrationSettings.of(target_precision, order, delta, calibration_fraction, seed, mode, output_dir)
    check_output(output, suffixes=(".json",))  # before any work or any report is written
    read = {"--taxonomy": taxonomy, "--category-map": category_map, "--scores": scores, "--logits": logits,
            "--predictions": predictions, "--ground-truth": ground_truth, "--groups": groups}  # fmt: skip
    check_not_an_input(output, "--output", read)
    if output_dir is not None:
        from taxopost.evaluation.report import CALIBRATION_FILES

        check_not_in_output_dir(output_dir, CALIBRATION_FILES, {**read, "--output": output})
    inputs = load_inputs(
        taxonomy, id_column, category_map, scores, logits,
        predictions=predictions, format=format, lineage_ranks=lineage_ranks, exclude_unresolved=exclude_unresolved,
    )  # fmt: skip
    n_rows = inputs.values.shape[0]
    y_true = read_ground_truth(ground_truth, inputs.category_map, n_rows=n_rows)
    occurrence = None if groups is None else read_groups(groups, n_rows=n_rows)
    report = _calibrate(
        inputs.values, inputs.category_map, y_true, settings,
        logits=inputs.logits, source=inputs, groups=occurrence, groups_path=groups,
    )  # fmt: skip
    return _write_config(report, output)


@dataclass(frozen=True)
class _CalibrationSettings:
    bare: str | None
    per_rank: dict[str, str]
    ranks: list[str] | None
    delta: float
    calibration_fraction: float
    seed: int
    mode: str
    output_dir: Path | None

    @classmethod
    def of(cls, target_precision, order, delta, calibration_fraction, seed, mode, output_dir) -> _CalibrationSettings:
        """From the options as typed: ``--target-precision`` parsed, ``--order`` split."""
        bare, per_rank = _parse_targets(target_precision or ["0.95"])
        ranks = [rank.strip() for rank in order.split(",") if rank.strip()] if order else None
        return cls(bare, per_rank, ranks, delta, calibration_fraction, seed, mode, output_dir)


def _calibrate(
    values,
    category_map,
    y_true,
    settings: _CalibrationSettings,
    *,
    logits: bool,
    source: Inputs | None,
    groups: np.ndarray | None = None,
    groups_path: Path | None = None,
):
    """Calibrate, print the per-rank table and write the reports: the one path of both calibrate commands.

    ``groups``: each row's occurrence, kept whole in the calibration/held-out split.
    """
    from taxopost.evaluation.calibration import calibrate as calibrate_thresholds
    from taxopost.evaluation.calibration import resolve_order
    from taxopost.evaluation.report import CALIBRATION_FILES, output_dir_kept_on_success, write_calibration

    bare, per_rank, ranks = settings.bare, settings.per_rank, settings.ranks
    if per_rank and bare is not None:  # a default plus overrides: every rank of the order gets one
        ranks = resolve_order(category_map, ranks, bare)  # the value is checked with the others, by calibrate
        target: float | dict[str, str] = {rank: per_rank.get(rank, bare) for rank in ranks}
        extra = [rank for rank in per_rank if rank not in ranks]
        if extra:
            raise InputError("--target-precision", f"{extra[0]}={per_rank[extra[0]]}", f"not in the order {ranks}")
    else:
        target = per_rank or bare  # type: ignore[assignment]
    out_dir = settings.output_dir
    folder = contextlib.nullcontext() if out_dir is None else output_dir_kept_on_success(out_dir, CALIBRATION_FILES)
    with folder:
        with progress_bar("calibrating", total=values.shape[0]) as advance:
            try:
                report = calibrate_thresholds(
                    values,
                    category_map,
                    y_true,
                    target_precision=target,
                    delta=settings.delta,
                    calibration_fraction=settings.calibration_fraction,
                    seed=settings.seed,
                    order=ranks,
                    mode=settings.mode,
                    logits=logits,
                    groups=groups,
                    progress=advance,
                )
            except InputError as exc:
                raise _located(exc, source, groups_path) from None
        _print_calibration(report)
        if out_dir is not None:
            written = write_calibration(report, out_dir)
            err.print(f"wrote {', '.join(sorted(written))} -> {out_dir}", markup=False)
    return report


def _write_config(report, output: Path) -> int:
    config = report.calibration.config()
    unreachable = report.calibration.unreachable
    if config is None:
        return fail(f"no rank reaches its target precision ({', '.join(unreachable)}); no config written", code=1)
    if unreachable:
        warn(f"target precision unreachable at {', '.join(unreachable)}: left out of the config")
    write_bytes_atomically(output, json.dumps(config.model_dump(), indent=2) + "\n")
    err.print(f"config -> {output}", markup=False)
    return 0


def _parse_targets(items: list[str]) -> tuple[str | None, dict[str, str]]:
    bare: str | None = None
    per_rank: dict[str, str] = {}
    for item in items:
        rank, sep, value = item.partition("=")
        if not sep:
            if bare is not None:
                raise InputError("--target-precision", item, f"a second value for every rank (first: {bare})")
            bare = item.strip()
            continue
        rank = rank.strip().lower()
        if not rank or not value.strip():
            raise InputError("--target-precision", item, "expected VALUE or RANK=VALUE, e.g. species=0.95")
        if rank in per_rank:
            raise InputError("--target-precision", item, f"{rank} is given twice")
        per_rank[rank] = value.strip()
    return bare, per_rank


def _located(exc: InputError, inputs: Inputs | None, groups: Path | None = None) -> InputError:
    """Errors about score values name the score file (and the detection of a --predictions file);
    about occurrences, the groups file."""
    if groups is not None and exc.field.startswith("groups"):
        return exc.with_source(str(groups))
    if inputs is None or not exc.field.startswith(("scores", "logits")):
        return exc
    return inputs.locate(exc)


def _grid(points: int) -> np.ndarray:
    return np.round(np.linspace(1.0, 0.01, points), 6)


def print_evaluation(evaluation: Evaluation, *, title: str) -> None:
    """The results table of ``taxopost evaluate`` and ``evaluate-capture-set``: one row per pipeline."""
    table = Table(title=title, title_justify="left")
    for column in ("pipeline", "accuracy", "changed", "corrected", "regressed", "generalized", "hF1"):
        table.add_column(column, justify="left" if column == "pipeline" else "right")
    for entry in evaluation.pipelines:
        metrics, outcomes = entry.metrics, entry.metrics.outcomes
        counts = (outcomes.changed, outcomes.corrected, outcomes.regressed, outcomes.generalized)
        table.add_row(
            entry.name, f"{metrics.accuracy:.4f}", *(f"{c:,}" for c in counts), f"{metrics.hierarchical_f1:.4f}"
        )
    out.print(table)
    for entry in evaluation.pipelines:
        for c in entry.consensus:
            out.print(
                f"{entry.name}: consensus combined {c.combined:,} occurrences ({c.rows_combined:,} rows); "
                f"passed through {c.one_detection:,} of one detection and {c.too_few:,} of fewer than "
                f"{c.min_detections} ({c.rows_passed_through:,} rows)",
                markup=False,
            )


def _print_calibration(report: CalibrationReport) -> None:
    held = {r.rank: r for r in report.held_out.ranks}
    table = Table(
        title=f"{report.calibration.mode} mode, delta={report.calibration.delta:g}: "
        f"{report.n_calibration:,} calibration rows{' (one per occurrence)' if report.one_per_occurrence else ''}, "
        f"{report.n_test:,} held out",
        title_justify="left",
    )
    # cal. = calibration split; test = held-out split; bound = lower confidence bound on precision
    for column in ("rank", "target", "threshold", "cal. prec.", "bound", "test prec.", "test cov."):
        width = max(len(r.rank) for r in report.calibration.ranks) if column == "rank" else None
        table.add_column(column, justify="left" if column == "rank" else "right", min_width=width)
    for rank in report.calibration.ranks:
        h = held[rank.rank]
        table.add_row(
            rank.rank,
            f"{rank.target:g}",
            f"{rank.threshold:g}" if rank.reached else "unreachable",
            f"{rank.accepted_precision:.4f}",
            f"{rank.precision_bound:.4f}",
            f"{h.precision:.4f}",
            f"{h.coverage:.4f}",
        )
    out.print(table)
    rest = report.held_out.not_accepted
    out.print(
        f"held out: accuracy {report.held_out.accuracy:.4f}; {rest.n:,} rows ({rest.coverage:.1%}) "
        "accepted at no rank keep the model's prediction",
        markup=False,
    )


@commands.command("evaluate-capture-set")
def evaluate_capture_set_cmd(
    capture_set: Annotated[str, typer.Option("--capture-set", help="Name of the capture set on the platform.")],
    output_dir: Annotated[
        Path, typer.Option("--output-dir", help="Receives metrics.json, report.html and the figures (PNG).")
    ],
    pipelines: Annotated[
        Path | None,
        typer.Option(
            "--pipelines",
            help="JSON or YAML pipelines; a masking step's taxa_list names a taxa list on the platform. "
            "Default: the model, both roll-up modes, and each taxa list followed by a roll-up.",
        ),
    ] = None,
    algorithm: Annotated[
        str | None, typer.Option("--algorithm", help="The classifier whose outputs are evaluated (if several).")
    ] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write one row per pipeline as CSV.")] = None,
) -> None:
    """The same evaluation on the database: a capture set's model outputs against its identifications."""
    from taxopost.django_setup import setup
    from taxopost.evaluation.report import EVALUATION_FILES
    from taxopost.evaluation.tables import evaluation_csv

    if csv_path is not None:
        check_output(csv_path, "--csv", suffixes=(".csv",))
    check_not_in_output_dir(output_dir, EVALUATION_FILES, {"--pipelines": pipelines, "--csv": csv_path})
    setup()
    from taxopost.io import read_text
    from taxopost.observations.evaluation import evaluate_capture_set, write_capture_set_evaluation
    from taxopost.observations.models import CaptureSet

    found = CaptureSet.named(capture_set)
    data = None
    if pipelines is not None:
        import yaml

        text = read_text(pipelines)
        try:
            data = json.loads(text) if pipelines.suffix.lower() == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise InputError("file", str(pipelines), f"is not valid JSON/YAML ({str(exc).splitlines()[0]})") from None
        except RecursionError:
            raise InputError("file", str(pipelines), TOO_DEEP) from None
    try:
        evaluation = evaluate_capture_set(found, data, algorithm=algorithm)
    except InputError as exc:
        raise exc.with_source(str(pipelines)) if pipelines is not None else exc from None
    written = write_capture_set_evaluation(evaluation, output_dir)
    print_evaluation(evaluation, title=f"{capture_set}: {evaluation.n_rows:,} identified rows")
    err.print(f"wrote {', '.join(sorted(written))} -> {output_dir}", markup=False)
    if csv_path is not None:
        write_bytes_atomically(csv_path, evaluation_csv(evaluation), field="--csv")
        err.print(f"pipelines -> {csv_path}", markup=False)


@commands.command("calibrate-capture-set")
def calibrate_capture_set_cmd(
    capture_set: Annotated[str, typer.Option("--capture-set", help="Name of the capture set on the platform.")],
    output: ConfigOutputOpt,
    target_precision: TargetPrecisionOpt = None,
    delta: DeltaOpt = 0.1,
    calibration_fraction: CalibrationFractionOpt = 0.5,
    seed: SeedOpt = 0,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="lineage (only generalise) or distribution (best taxon per rank, as Antenna's own roll-up).",
        ),
    ] = DEFAULT_ROLLUP_MODE,
    order: CalibrationOrderOpt = None,
    algorithm: Annotated[
        str | None, typer.Option("--algorithm", help="The classifier whose outputs are calibrated (if several).")
    ] = None,
    output_dir: CalibrationReportOpt = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write one row per rank as CSV.")] = None,
    antenna_config: Annotated[
        Path | None,
        typer.Option("--antenna-config", help="Also write the thresholds as Antenna's rank roll-up form takes them."),
    ] = None,
) -> int:
    """Calibrate roll-up thresholds on a capture set's identified model outputs, and print them in the
    form Antenna's rank roll-up admin action takes (upper-case ranks, rollup_order)."""
    from taxopost.django_setup import setup
    from taxopost.evaluation.tables import calibration_csv
    from taxopost.io.antenna.rollup import ANTENNA_ROLLUP_MODE, antenna_rollup_config

    settings = _CalibrationSettings.of(target_precision, order, delta, calibration_fraction, seed, mode, output_dir)
    for path, flag, suffix in ((output, "--output", ".json"), (csv_path, "--csv", ".csv"),
                               (antenna_config, "--antenna-config", ".json")):  # fmt: skip
        if path is not None:
            check_output(path, flag, suffixes=(suffix,))
    if output_dir is not None:
        from taxopost.evaluation.report import CALIBRATION_FILES

        written = {"--output": output, "--csv": csv_path, "--antenna-config": antenna_config}
        check_not_in_output_dir(output_dir, CALIBRATION_FILES, written)
    setup()
    from taxopost.observations.antenna import antenna_capture_set_id
    from taxopost.observations.evaluation import capture_set_rows
    from taxopost.observations.models import CaptureSet

    found = CaptureSet.named(capture_set)
    rows = capture_set_rows(found, algorithm)
    report = _calibrate(
        rows.scores, rows.category_map, rows.y_true, settings, logits=False, source=None, groups=rows.groups
    )
    if csv_path is not None:
        write_bytes_atomically(csv_path, calibration_csv(report), field="--csv")
        err.print(f"ranks -> {csv_path}", markup=False)
    code = _write_config(report, output)
    config = report.calibration.config()
    if config is not None:
        form = antenna_rollup_config(config.thresholds, config.order, capture_set_id=antenna_capture_set_id(found))
        text = json.dumps(form, indent=2)
        if mode != ANTENNA_ROLLUP_MODE:
            warn(
                f"Antenna's roll-up picks the best taxon at each rank (--mode {ANTENNA_ROLLUP_MODE}); "
                f"these {mode} thresholds may accept other taxa there"
            )
        err.print("Antenna rank roll-up config (paste into its admin form):", markup=False)
        out.print(text, markup=False, highlight=False)
        if antenna_config is not None:
            write_bytes_atomically(antenna_config, text + "\n", field="--antenna-config")
            err.print(f"Antenna config -> {antenna_config}", markup=False)
    return code
