"""Small-size filter: detections too small to identify become "Not identifiable".

The rule is :func:`taxopost.core.size_filter.small_size_filter`; the platform adapter is
:mod:`taxopost.postprocessing.tasks.small_size_filter`. It needs boxes and image sizes, which
score matrices do not carry, so it has no offline pipeline step.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from taxopost.core.size_filter import DEFAULT_SIZE_THRESHOLD, check_size_threshold
from taxopost.tasks.base import TaskConfig, TaskSpec


class SmallSizeFilterConfig(TaskConfig):
    """Small-size filter: detections below a share of the image area become "Not identifiable"."""

    size_threshold: float = Field(
        default=DEFAULT_SIZE_THRESHOLD,
        description="Relative area (box area / image area) below which a detection is too small; in (0, 1).",
    )

    @field_validator("size_threshold")
    @classmethod
    def _check(cls, value: float) -> float:
        return check_size_threshold(value)


class SmallSizeFilterSpec(TaskSpec):
    key = "small_size_filter"
    name = "Small-size filter"
    version = "1"
    description = 'Mark detections smaller than a share of the image area as "Not identifiable".'
    config_model = SmallSizeFilterConfig
