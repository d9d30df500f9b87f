"""Evaluation of post-processing against ground truth: metrics, threshold sweeps, calibration, reports.

Pure numpy (plus scipy and matplotlib) over the core; never Django. The CLI's ``taxopost
evaluate`` and ``taxopost calibrate`` are thin wrappers over :func:`evaluate_pipelines` and
:func:`calibrate`. docs/evaluation.md defines every metric.

The names are imported on first use, so that scipy.stats and matplotlib load only where used.
"""

from __future__ import annotations

from taxopost.lazy import lazy_exports

#: The modules behind the public names, imported on first use of one of their names.
__getattr__, __dir__, _NAMES = lazy_exports(
    __name__,
    {
        "taxopost.evaluation.calibration": (
            "CalibrationReport",
            "HeldOutEvaluation",
            "HeldOutRank",
            "NotAccepted",
            "RankCalibration",
            "ThresholdCalibration",
            "calibrate",
            "calibrate_thresholds",
            "evaluate_thresholds",
            "split_rows",
        ),
        "taxopost.evaluation.evaluate": (
            "Evaluation",
            "ModeDisagreement",
            "PipelineEvaluation",
            "evaluate_pipelines",
            "evaluation_passes",
        ),
        "taxopost.evaluation.fwer_control": ("TestingProcedure", "fixed_sequence"),
        "taxopost.evaluation.ground_truth": ("read_ground_truth",),
        "taxopost.evaluation.metrics": (
            "ConfidenceBins",
            "Corrections",
            "MetricsSummary",
            "MistakeSeverity",
            "OutcomeCounts",
            "accuracy",
            "confidence_bins",
            "corrections",
            "hierarchical_scores",
            "is_correct",
            "mistake_severity",
            "outcome_classes",
            "outcome_counts",
            "rank_coverage",
            "rank_precision",
            "summarize",
        ),
        "taxopost.evaluation.occurrences": (
            "ConsensusCounts",
            "OccurrenceMetrics",
            "consensus_counts",
            "occurrence_metrics",
            "occurrence_rows",
        ),
        "taxopost.evaluation.pipelines": ("Pipeline", "Step", "parse_pipelines", "read_pipelines", "run_pipelines"),
        "taxopost.evaluation.report": (
            "calibration_record",
            "evaluation_record",
            "write_calibration",
            "write_evaluation",
        ),
        "taxopost.evaluation.sweep": ("RiskCoverage", "risk_coverage_curves"),
    },
)
__all__ = _NAMES
