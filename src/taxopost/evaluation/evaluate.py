"""Evaluate pipelines side by side against ground truth: the one function behind ``taxopost evaluate``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from taxopost.core.category_map import CategoryMap
from taxopost.errors import InputError
from taxopost.evaluation._checks import check_taxa, common_ancestors, label_space_ranks
from taxopost.evaluation.metrics import OUTCOMES, MetricsSummary, _outcomes, check_n_bins, summarize
from taxopost.evaluation.occurrences import (
    ConsensusCounts,
    OccurrenceMetrics,
    check_one_truth,
    consensus_counts,
    occurrence_metrics,
)
from taxopost.evaluation.pipelines import Pipeline, PipelineOutput, Step, count_passes, run_pipelines
from taxopost.evaluation.sweep import RiskCoverage, check_grid, risk_coverage_curves
from taxopost.tasks.occurrence_consensus import OccurrenceConsensusConfig
from taxopost.tasks.rank_rollup import RankRollupConfig


@dataclass(frozen=True)
class PipelineEvaluation:
    """One pipeline's metrics against the ground truth.

    Attributes
    ----------
    pipeline : Pipeline
    metrics : MetricsSummary
    risk_coverage : dict of str to RiskCoverage, or None
        For a pipeline ending with a roll-up: each rank's curve, fine to coarse.
    occurrences : OccurrenceMetrics or None
        The same figures with one prediction per occurrence (when the rows' occurrences are known).
    consensus : tuple of ConsensusCounts
        For each consensus step of the pipeline: the occurrences it combined and passed through.
    """

    pipeline: Pipeline
    metrics: MetricsSummary
    risk_coverage: dict[str, RiskCoverage] | None
    occurrences: OccurrenceMetrics | None = None
    consensus: tuple[ConsensusCounts, ...] = ()

    @property
    def name(self) -> str:
        return self.pipeline.name


@dataclass(frozen=True)
class ModeDisagreement:
    """Two roll-ups that differ only in mode, compared on the rows where their final taxa differ.

    Attributes
    ----------
    lineage, distribution : str
        The two pipelines' names.
    counterpart_added : bool
        One of them was added for this comparison (it is not among the listed pipelines).
    n, n_disagree : int
        All rows, and the rows where the two final taxa differ.
    share_disagree : float
    confusion : ndarray of shape (3, 3), int64
        Outcomes there (codes of :data:`~taxopost.evaluation.metrics.OUTCOMES`): rows lineage,
        columns distribution.
    lineage_accuracy, distribution_accuracy : float
        Share of those rows each mode gets right (NaN when none differ).
    distribution_leaves_lineage : int
        Rows where the distribution mode's answer is not on the source prediction's lineage.
    """

    lineage: str
    distribution: str
    counterpart_added: bool
    n: int
    n_disagree: int
    share_disagree: float
    confusion: np.ndarray
    lineage_accuracy: float
    distribution_accuracy: float
    distribution_leaves_lineage: int


@dataclass(frozen=True)
class Evaluation:
    """Metrics of every pipeline on the same rows (:func:`~taxopost.evaluation.report.write_evaluation`
    writes it as ``metrics.json``).

    Attributes
    ----------
    n_rows : int
    ranks : list of str
        The label space's ranks, fine to coarse (the keys of per-rank metrics).
    pipelines : tuple of PipelineEvaluation
        In the order given.
    mode_disagreement : tuple of ModeDisagreement
        For roll-ups that differ only in mode.
    warnings : tuple of str
    """

    n_rows: int
    ranks: list[str]
    pipelines: tuple[PipelineEvaluation, ...]
    mode_disagreement: tuple[ModeDisagreement, ...]
    warnings: tuple[str, ...]


def evaluation_passes(pipelines: Sequence[Pipeline]) -> int:
    """Passes over the score matrix :func:`evaluate_pipelines` makes (a progress bar's total / n_rows)."""
    return count_passes([*pipelines, *_counterparts(pipelines)])


def evaluate_pipelines(
    values: np.ndarray,
    category_map: CategoryMap,
    y_true: np.ndarray,
    pipelines: Sequence[Pipeline],
    *,
    logits: bool = False,
    groups: np.ndarray | None = None,
    n_bins: int = 10,
    grid: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> Evaluation:
    """Run every pipeline on the same rows and measure it against the ground truth.

    Parameters
    ----------
    values : ndarray of shape (n_rows, n_classes)
        Probabilities, or logits with ``logits=True``.
    category_map : CategoryMap
    y_true : ndarray of shape (n_rows,), int
        The true (human-verified) taxon of each row.
    pipelines : sequence of Pipeline
        E.g. from :func:`~taxopost.evaluation.pipelines.read_pipelines`.
    groups : ndarray of shape (n_rows,), int, optional
        Each row's occurrence: enables consensus steps and the per-occurrence metrics
        (:mod:`taxopost.evaluation.occurrences`).
    n_bins : int, default 10
        Input-confidence bins.
    grid : array-like, optional
        Thresholds of the risk-coverage sweep (default 100 from 1.0 to 0.01).
    progress : callable, optional
        Called with numbers of rows; the total is ``n_rows * evaluation_passes(pipelines)``.

    Returns
    -------
    Evaluation
    """
    shape = np.shape(values)
    if len(shape) != 2:
        raise InputError("logits" if logits else "scores", shape, "must be a matrix of shape (n_rows, n_classes)")
    taxonomy = category_map.taxonomy
    y_true = check_taxa(y_true, taxonomy, field="ground_truth", n_rows=shape[0])
    n_bins = check_n_bins(n_bins)
    grid = None if grid is None else check_grid(grid, field="sweep thresholds")
    if not pipelines:
        raise InputError("pipelines", [], "give at least one pipeline")
    if groups is not None:  # before the pipelines run: a mixed occurrence fails at once
        groups = check_one_truth(y_true, groups, taxonomy)
    counterparts = _counterparts(pipelines)
    baseline, outputs = run_pipelines(
        values, category_map, [*pipelines, *counterparts], logits=logits, groups=groups, progress=progress
    )
    ranks = label_space_ranks(category_map)
    exclude = common_ancestors(category_map)
    results = []
    for output in outputs[: len(pipelines)]:
        metrics = summarize(
            y_true,
            output.taxon,
            baseline.taxon,
            baseline.confidence,
            taxonomy,
            ranks=ranks,
            exclude=exclude,
            n_bins=n_bins,
        )
        config = output.pipeline.rollup
        curves = None
        if config is not None:
            curves = risk_coverage_curves(output.candidates, y_true, taxonomy, thresholds=config.thresholds, grid=grid)
        occurrences = None
        if groups is not None:
            occurrences = occurrence_metrics(
                y_true, output.taxon, output.score, baseline.taxon, baseline.confidence, groups, taxonomy, ranks=ranks
            )
        consensus = ()
        if groups is not None:
            consensus = tuple(
                consensus_counts(groups, step.config.min_detections, step=number)
                for number, step in enumerate(output.pipeline.steps)
                if isinstance(step.config, OccurrenceConsensusConfig)
            )
        results.append(PipelineEvaluation(output.pipeline, metrics, curves, occurrences, consensus))
    disagreement = tuple(
        _disagreement(lineage, distribution, y_true, category_map, added)
        for lineage, distribution, added in _mode_pairs(outputs, len(pipelines))
    )
    warnings = tuple(warning for pipeline in pipelines for warning in pipeline.warnings)
    return Evaluation(int(shape[0]), ranks, tuple(results), disagreement, warnings)


def _rollup_group(pipeline: Pipeline) -> tuple | None:
    """Pipelines in one group differ at most in their roll-up mode."""
    config = pipeline.rollup
    if config is None:
        return None
    return (tuple(s.key() for s in pipeline.transforms), tuple(config.order), tuple(sorted(config.thresholds.items())))


def _counterparts(pipelines: Sequence[Pipeline]) -> list[Pipeline]:
    """When no two roll-ups differ only in mode, the first roll-up in the other mode (for the comparison)."""
    modes: dict[tuple, set[str]] = {}
    for pipeline in pipelines:
        group = _rollup_group(pipeline)
        if group is not None:
            modes.setdefault(group, set()).add(pipeline.rollup.mode)
    if not modes or any(len(found) == 2 for found in modes.values()):
        return []
    first = next(p for p in pipelines if p.rollup is not None)
    other = "distribution" if first.rollup.mode == "lineage" else "lineage"
    config = RankRollupConfig(thresholds=first.rollup.thresholds, order=first.rollup.order, mode=other)
    return [Pipeline(f"{first.name} ({other} mode)", (*first.steps[:-1], Step("rank_rollup", config)))]


def _mode_pairs(outputs: list[PipelineOutput], n_listed: int) -> list[tuple[PipelineOutput, PipelineOutput, bool]]:
    by_group: dict[tuple, dict[str, PipelineOutput]] = {}
    for output in outputs:
        group = _rollup_group(output.pipeline)
        if group is not None:
            by_group.setdefault(group, {}).setdefault(output.pipeline.rollup.mode, output)
    added = {id(output) for output in outputs[n_listed:]}
    pairs = []
    for found in by_group.values():
        if len(found) == 2:
            lineage, distribution = found["lineage"], found["distribution"]
            pairs.append((lineage, distribution, id(lineage) in added or id(distribution) in added))
    return pairs


def _disagreement(
    lineage: PipelineOutput,
    distribution: PipelineOutput,
    y_true: np.ndarray,
    category_map: CategoryMap,
    added: bool,
) -> ModeDisagreement:
    taxonomy = category_map.taxonomy
    differ = lineage.taxon != distribution.taxon
    truth = y_true[differ]
    left = _outcomes(truth, lineage.taxon[differ].astype(np.int64), taxonomy)
    right = _outcomes(truth, distribution.taxon[differ].astype(np.int64), taxonomy)
    k = len(OUTCOMES)
    confusion = np.bincount(left.astype(np.int64) * k + right, minlength=k * k).reshape(k, k).astype(np.int64)
    source = lineage.rollup.source_taxon[differ]
    off_lineage = ~taxonomy.is_ancestor_or_self(distribution.taxon[differ], source)
    n = int(differ.sum())
    return ModeDisagreement(
        lineage=lineage.pipeline.name,
        distribution=distribution.pipeline.name,
        counterpart_added=added,
        n=int(differ.size),
        n_disagree=n,
        share_disagree=n / differ.size if differ.size else float("nan"),
        confusion=confusion,
        lineage_accuracy=float((left < 2).mean()) if n else float("nan"),
        distribution_accuracy=float((right < 2).mean()) if n else float("nan"),
        distribution_leaves_lineage=int(off_lineage.sum()),
    )
