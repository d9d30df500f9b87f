"""Occurrence consensus: combine the vectors of an occurrence's detections into one distribution.

The rule is :func:`taxopost.core.consensus.consensus`; the platform adapter is
:mod:`taxopost.postprocessing.tasks.occurrence_consensus`. Every detection of a combined
occurrence gets the combined vector, so a roll-up after it decides once per occurrence.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from taxopost.tasks.base import CliOption, TaskConfig, TaskSpec

#: Default method of the platform's task (docs/evaluation.md, "Occurrence consensus", gives the evidence).
DEFAULT_CONSENSUS_METHOD = "mean"


class OccurrenceConsensusConfig(TaskConfig):
    """Occurrence consensus: how detections' vectors combine, and which occurrences are combined."""

    method: Literal["mean", "geometric"] = Field(
        default=DEFAULT_CONSENSUS_METHOD,
        description="mean: average the probabilities (frames share their errors); "
        "geometric: normalised product (frames as independent evidence, floored at 1e-4).",
    )
    weighting: Literal["none", "area"] = Field(
        default="none",
        description="none: every detection counts the same; area: in proportion to its box's area.",
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
        "(default: every classifier's, each chain on its own).",
    )


class OccurrenceConsensusSpec(TaskSpec):
    key = "occurrence_consensus"
    name = "Occurrence consensus"
    version = "1"
    description = "Combine the score vectors of each occurrence's detections into one distribution for all of them."
    config_model = OccurrenceConsensusConfig
    form_widgets = {"source_algorithm": "algorithm_in_scope"}
    cli_options = {
        "method": CliOption(help="mean or geometric."),
        "weighting": CliOption(help="none or area."),
        "min_detections": CliOption(help="combine occurrences with at least this many detections."),
        "source_algorithm": CliOption(help="classifier key."),
    }
