"""Occurrence consensus: combine the vectors of an occurrence's detections into one distribution.

The rule is :func:`taxopost.core.consensus.consensus`; the platform adapter is
:mod:`taxopost.postprocessing.tasks.occurrence_consensus`. Every detection of a combined
occurrence gets the combined vector, so a roll-up after it decides once per occurrence. In an
evaluation pipeline it transforms the score matrix the same way, given the occurrence of each
row (``taxopost evaluate --groups FILE``); score files carry no boxes, so it runs unweighted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from taxopost.core.category_map import CategoryMap
from taxopost.core.consensus import consensus
from taxopost.core.sparse import SparseRows
from taxopost.errors import InputError
from taxopost.tasks.base import CliOption, OfflineStep, TaskConfig, TaskSpec, Transformed

#: Default method of the platform's task (docs/evaluation.md, "Occurrence consensus", gives the evidence).
DEFAULT_CONSENSUS_METHOD = "mean"


class OccurrenceConsensusConfig(TaskConfig):
    """Occurrence consensus: how detections' vectors combine, and which occurrences are combined."""

    method: Literal["mean", "geometric"] = Field(
        default=DEFAULT_CONSENSUS_METHOD,
        description="mean: average the probabilities (frames share their errors); "
        "geometric: normalised product (frames as independent evidence, floored at 1e-4).",
    )
    weighting: Literal["none", "area", "detector_confidence"] = Field(
        default="none",
        description="none: every detection counts the same; area: in proportion to its box's area; "
        "detector_confidence: in proportion to the detector's confidence in its box.",
    )
    min_detections: int = Field(
        default=2,
        ge=2,
        le=10_000,
        description="Occurrences with fewer detections (with a score vector) are left as they are.",
    )
    source_algorithm: str | None = Field(
        default=None,
        description="Key of the classifier whose predictions (and what masking derived from them) are combined "
        "(default: every classifier's; an occurrence whose detections use different category maps, or a detection "
        "with current outputs of two classifiers, is refused: name one).",
    )


class OccurrenceConsensusSpec(TaskSpec):
    key = "occurrence_consensus"
    name = "Occurrence consensus"
    version = "1"
    description = "Combine the score vectors of each occurrence's detections into one distribution for all of them."
    config_model = OccurrenceConsensusConfig
    offline = "transform"
    needs_groups = True
    form_widgets = {"source_algorithm": "algorithm_in_scope"}
    cli_options = {
        "method": CliOption(help="mean or geometric."),
        "weighting": CliOption(help="none, area or detector_confidence."),
        "min_detections": CliOption(help="combine occurrences with at least this many detections."),
        "source_algorithm": CliOption(help="classifier key."),
    }

    @classmethod
    def prepare_offline(
        cls,
        config: OccurrenceConsensusConfig,
        category_map: CategoryMap,
        *,
        where: str,
        base_dir: Path,
        taxa_lists: Callable[[str], list[int]] | None = None,
    ) -> OfflineStep:
        """Refuse what a score file cannot serve: boxes to weigh by, a platform algorithm to pick."""
        if config.weighting != "none":
            raise InputError(
                f"{where}.weighting", config.weighting, "score files carry no boxes or detector confidences: use none"
            )
        if config.source_algorithm is not None:
            raise InputError(
                f"{where}.source_algorithm", config.source_algorithm, "names a platform algorithm; a pipeline "
                "runs on one score file",
            )  # fmt: skip
        return OfflineStep(key=(cls.key, config.method, config.min_detections))

    @classmethod
    def transform(
        cls,
        values: np.ndarray | SparseRows,
        category_map: CategoryMap,
        config: OccurrenceConsensusConfig,
        step: OfflineStep,
        *,
        logits: bool,
        normalized: bool,
        progress: Callable[[int], None] | None = None,
        groups: np.ndarray,
    ) -> Transformed:
        """Each row gets its occurrence's combined vector; occurrences below ``min_detections`` keep theirs."""
        if isinstance(values, SparseRows):  # each row gets a dense combined vector: densified once
            values = values.dense()
        combined = consensus(values, groups, category_map, method=config.method, logits=logits, progress=progress)
        scores = combined.scores[combined.row_group]
        winner = combined.winner[combined.row_group]
        alone = np.flatnonzero(combined.sizes[combined.row_group] < config.min_detections)
        if alone.size:  # as on the platform: left as they are (a group of one row already is)
            kept = consensus(values[alone], alone, category_map, logits=logits)
            scores[alone], winner[alone] = kept.scores, kept.winner
        return Transformed(scores, winner, normalized=normalized)
