"""Evaluation and calibration results as CSV: one row per pipeline, one row per rank.

For a spreadsheet or another tool; ``metrics.json`` and ``calibration.json`` keep everything,
these keep the numbers an admin compares.
"""

from __future__ import annotations

import csv
import io
import math

from taxopost.evaluation.calibration import CalibrationReport
from taxopost.evaluation.evaluate import Evaluation
from taxopost.evaluation.report import calibration_record, evaluation_record

#: The per-pipeline numbers, in the order the CLI's table shows them.
PIPELINE_COLUMNS = (
    "n", "accuracy", "baseline_accuracy", "exact_accuracy", "changed", "corrected", "regressed", "generalized",
    "specialized", "still_wrong", "unchanged", "hierarchical_precision", "hierarchical_recall", "hierarchical_f1",
)  # fmt: skip


def evaluation_csv(result: Evaluation) -> str:
    """An evaluation as CSV: ``pipeline``, the scalar metrics (as in ``metrics.json``), then
    ``coverage_<rank>`` and ``precision_<rank>`` for each rank of the label space (empty where no
    prediction is at it)."""
    evaluation = evaluation_record(result)
    ranks = list(evaluation["ranks"])  # type: ignore[arg-type]
    header = [
        "pipeline",
        *PIPELINE_COLUMNS,
        *(f"{kind}_{rank}" for rank in ranks for kind in ("coverage", "precision")),
    ]
    rows = []
    for entry in evaluation["pipelines"]:  # type: ignore[union-attr]
        row = [entry["name"], *(_cell(entry.get(column)) for column in PIPELINE_COLUMNS)]
        for rank in ranks:
            row += [_cell(entry["coverage"].get(rank)), _cell(entry["precision"].get(rank))]
        rows.append(row)
    return _csv(header, rows)


def calibration_csv(result: CalibrationReport) -> str:
    """A calibration as CSV, one row per rank: the target, the chosen threshold (empty when
    unreachable), the calibration split's precision and its lower bound, and the held-out split's
    precision and coverage (as in ``calibration.json``)."""
    report = calibration_record(result)
    held = {entry["rank"]: entry for entry in report["held_out"]["ranks"]}  # type: ignore[index]
    header = [
        "rank", "target", "threshold", "reached", "calibration_accepted", "calibration_precision",
        "precision_bound", "held_out_accepted", "held_out_precision", "held_out_coverage",
    ]  # fmt: skip
    rows = []
    for rank in report["ranks"]:  # type: ignore[union-attr]
        out = held.get(rank["rank"], {})
        rows.append(
            [
                rank["rank"],
                _cell(rank["target"]),
                _cell(rank["threshold"]),
                str(rank["reached"]).lower(),
                rank["n_accepted"],
                _cell(rank["precision"]),
                _cell(rank["precision_bound"]),
                _cell(out.get("n_accepted")),
                _cell(out.get("precision")),
                _cell(out.get("coverage")),
            ]
        )
    return _csv(header, rows)


def _cell(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _csv(header: list[str], rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
