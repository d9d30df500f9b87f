"""Rank roll-up: promote an unconfident prediction to the first coarser rank that clears its threshold.

The rule is :func:`taxopost.core.rollup.rank_rollup`; the platform adapter is
:mod:`taxopost.postprocessing.tasks.rank_rollup`. In an evaluation pipeline it is the last step
(its output is a taxon, not a score vector), swept over thresholds in one aggregation pass.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from taxopost.core.ranks import check_rollup_order, check_thresholds
from taxopost.core.rollup import DEFAULT_THRESHOLDS, resolve_rollup_settings
from taxopost.tasks.base import CliOption, TaskConfig, TaskSpec

#: Default roll-up mode of the platform's task (docs/evaluation.md gives the evidence).
DEFAULT_ROLLUP_MODE = "lineage"


class RankRollupConfig(TaskConfig):
    """Rank roll-up: per-rank thresholds, the order ranks are tried in, and the candidate mode."""

    thresholds: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_THRESHOLDS),
        description="Minimum aggregate score per rank, each in (0, 1].",
        json_schema_extra={"example": DEFAULT_THRESHOLDS},
    )
    order: list[str] | None = Field(
        default=None,
        description="Ranks to try, fine to coarse. Default: the thresholded ranks, fine to coarse.",
    )
    mode: Literal["lineage", "distribution"] = Field(
        default=DEFAULT_ROLLUP_MODE,
        description="lineage: only generalise the prediction along its own lineage; "
        "distribution: the best-scoring taxon of each rank, wherever it is.",
    )

    # Each field is checked on its own first, so that pydantic reports its problems together
    # with every other field's (an unknown key, say); the model validator then relates them.
    # Before pydantic's own number check, which stops at the first entry that is not a number and
    # hides the others' problems (species=1.5 next to genus=abc): every entry is reported at once.
    @field_validator("thresholds", mode="before")
    @classmethod
    def _check_thresholds(cls, value: object) -> object:
        return check_thresholds(value) if isinstance(value, dict) else value

    @field_validator("order")
    @classmethod
    def _check_order(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_rollup_order(value)

    @model_validator(mode="after")
    def _resolve(self) -> RankRollupConfig:
        thresholds, order, _ = resolve_rollup_settings(self.thresholds, self.order, self.mode)
        object.__setattr__(self, "thresholds", thresholds)
        object.__setattr__(self, "order", order)
        return self


class RankRollupSpec(TaskSpec):
    key = "rank_rollup"
    name = "Rank roll-up"
    version = "1"
    description = "Promote unconfident predictions to the first coarser rank whose summed score clears its threshold."
    config_model = RankRollupConfig
    offline = "decision"
    form_widgets = {"thresholds": "rank_thresholds", "order": "rank_list"}
    cli_options = {
        "thresholds": CliOption(
            flag="--threshold",
            parse="rank_values",
            metavar="RANK=VALUE",
            help="RANK=VALUE, repeatable; the ranks given replace the defaults "
            "(species=0.8 genus=0.6 family=0.4), so give every rank to try.",
        ),
        "order": CliOption(parse="comma_list", help="ranks fine to coarse."),
        "mode": CliOption(help="lineage or distribution."),
    }
