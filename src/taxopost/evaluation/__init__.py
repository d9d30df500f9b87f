"""Evaluation of post-processing against ground truth: metrics, threshold sweeps, calibration, reports.

Pure numpy (plus scipy and matplotlib) over the core; never Django. The CLI's ``taxopost
evaluate`` and ``taxopost calibrate`` are thin wrappers over :func:`evaluate_pipelines` and
:func:`calibrate`. docs/evaluation.md defines every metric.
"""

from taxopost.evaluation.calibration import (
    CalibrationReport,
    HeldOutEvaluation,
    HeldOutRank,
    NotAccepted,
    RankCalibration,
    ThresholdCalibration,
    calibrate,
    calibrate_thresholds,
    evaluate_thresholds,
    split_rows,
)
from taxopost.evaluation.evaluate import (
    Evaluation,
    ModeDisagreement,
    PipelineEvaluation,
    evaluate_pipelines,
    evaluation_passes,
)
from taxopost.evaluation.fwer_control import TestingProcedure, fixed_sequence
from taxopost.evaluation.ground_truth import read_ground_truth
from taxopost.evaluation.metrics import (
    ConfidenceBins,
    Corrections,
    MetricsSummary,
    MistakeSeverity,
    OutcomeCounts,
    accuracy,
    confidence_bins,
    corrections,
    hierarchical_scores,
    is_correct,
    mistake_severity,
    outcome_classes,
    outcome_counts,
    rank_coverage,
    rank_precision,
    summarize,
)
from taxopost.evaluation.occurrences import OccurrenceMetrics, occurrence_metrics, occurrence_rows
from taxopost.evaluation.pipelines import Pipeline, Step, parse_pipelines, read_pipelines, run_pipelines
from taxopost.evaluation.report import calibration_record, evaluation_record, write_calibration, write_evaluation
from taxopost.evaluation.sweep import RiskCoverage, risk_coverage_curves

__all__ = [
    "CalibrationReport",
    "ConfidenceBins",
    "Corrections",
    "Evaluation",
    "HeldOutEvaluation",
    "HeldOutRank",
    "MetricsSummary",
    "MistakeSeverity",
    "ModeDisagreement",
    "NotAccepted",
    "OccurrenceMetrics",
    "OutcomeCounts",
    "Pipeline",
    "PipelineEvaluation",
    "RankCalibration",
    "RiskCoverage",
    "Step",
    "TestingProcedure",
    "ThresholdCalibration",
    "accuracy",
    "calibrate",
    "calibrate_thresholds",
    "calibration_record",
    "confidence_bins",
    "corrections",
    "evaluate_pipelines",
    "evaluate_thresholds",
    "evaluation_passes",
    "evaluation_record",
    "fixed_sequence",
    "hierarchical_scores",
    "is_correct",
    "mistake_severity",
    "occurrence_metrics",
    "occurrence_rows",
    "outcome_classes",
    "outcome_counts",
    "parse_pipelines",
    "rank_coverage",
    "rank_precision",
    "read_ground_truth",
    "read_pipelines",
    "risk_coverage_curves",
    "run_pipelines",
    "split_rows",
    "summarize",
    "write_calibration",
    "write_evaluation",
]
