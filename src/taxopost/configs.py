"""Validated configurations of the post-processing tasks (pydantic, no Django).

One model per task, shared by the platform's tasks (whose admin forms and API schema come
from these models' JSON schemas), the evaluator's pipelines and the CLI. Every model forbids
unknown keys, and validation reuses the core's own checks so a rule is stated once.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from taxopost.core.ranks import check_rollup_order, check_thresholds
from taxopost.core.rollup import DEFAULT_THRESHOLDS, MODES, resolve_rollup_settings
from taxopost.core.size_filter import DEFAULT_SIZE_THRESHOLD, check_size_threshold
from taxopost.errors import InputError

#: Default roll-up mode of the platform's task (docs/evaluation.md gives the evidence).
DEFAULT_ROLLUP_MODE = "lineage"


class TaskConfig(BaseModel):
    """Base of every task config: strict keys, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    @field_validator("thresholds")
    @classmethod
    def _check_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        return check_thresholds(value)

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


class ClassMaskingConfig(TaskConfig):
    """Class masking: keep only the classes admitted by a taxa list."""

    taxa_list: str = Field(
        description="The taxa list: its name on the platform, a file path in evaluation pipelines.",
        min_length=1,
    )
    source_algorithm: str | None = Field(
        default=None,
        description="Key of the algorithm whose classifications are masked (default: every classifier's; "
        "post-processing outputs only when named).",
    )
    reweight: bool = Field(default=True, description="Renormalise the kept probabilities.")


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


Config = TypeVar("Config", bound=TaskConfig)


def parse_config(model: type[Config], data: dict[str, Any] | None, *, prefix: str = "") -> Config:
    """Validate ``data`` against ``model``; the first problem becomes an :class:`InputError`.

    The API reports every field error from pydantic itself; the CLI and jobs need one line.
    """
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise config_error(exc, prefix=prefix) from None


def config_error(exc: ValidationError, *, prefix: str = "") -> InputError:
    """The first error of a pydantic ValidationError as an InputError naming field and value."""
    first = exc.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, InputError):
        field = cause.field
        return InputError(f"{prefix}{field}", cause.value, cause.reason)
    field = ".".join(str(part) for part in first["loc"]) or "config"
    return InputError(f"{prefix}{field}", first.get("input"), first["msg"])


def config_field_errors(exc: ValidationError | InputError) -> dict[str, list[str]]:
    """Every problem of a config as ``{field: [messages]}``, the shape the API and forms report.

    Fields are dotted paths inside the config (``"thresholds.genus"``, ``"mode"``); a problem of
    the config as a whole is under ``"config"``. An InputError raised by a shared check (the
    core's threshold or order validation) keeps the field that check named.
    """
    if isinstance(exc, InputError):
        field = exc.field.removeprefix("config.") or "config"
        return {field: [f"{exc.reason} (got {exc.value!r})"]}
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, InputError):
            field, message = cause.field, f"{cause.reason} (got {cause.value!r})"
        else:
            field = ".".join(str(part) for part in error["loc"]) or "config"
            message = error["msg"]
        errors.setdefault(field, []).append(message)
    return errors


__all__ = [
    "DEFAULT_ROLLUP_MODE",
    "MODES",
    "ClassMaskingConfig",
    "RankRollupConfig",
    "SmallSizeFilterConfig",
    "TaskConfig",
    "config_error",
    "config_field_errors",
    "parse_config",
]
