"""The shape of a post-processing task, without Django: what it is called, what it accepts, how
it is presented, and whether it runs on arrays offline.

A task is three files: its rule in :mod:`taxopost.core`, its spec here (one module per task,
e.g. :mod:`taxopost.tasks.rank_rollup`) and its platform adapter
(``taxopost/postprocessing/tasks/<key>.py``). Defining a :class:`TaskSpec` subclass registers
it; everything that lists tasks (the platform, the admin form, ``taxopost run``, the REST API,
the evaluator's pipelines, ``Algorithm.task_type``) reads :mod:`taxopost.tasks.registry`.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from taxopost.tasks import registry

if TYPE_CHECKING:
    from pathlib import Path

    from taxopost.core.category_map import CategoryMap

#: Task keys are identifiers: they name algorithms, jobs, API values and pipeline steps.
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class TaskConfig(BaseModel):
    """Base of every task config: strict keys, immutable, no boolean for a number."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic's lax mode reads ``true`` as 1 for an ``int`` or ``float`` field, so a JSON
        boolean passed for a count or a threshold unnoticed (or got a range message). Strict
        numbers would refuse ``"3"`` and ``3.0`` too, which the CLI's ``--set`` and JSON clients
        send: only booleans are refused."""
        if isinstance(value, bool):
            kind = _number_kind(cls.model_fields[info.field_name].annotation)
            if kind is int:
                raise PydanticCustomError("int_type", "Input should be a valid integer")
            if kind is float:
                raise PydanticCustomError("float_type", "Input should be a valid number")
        return value


def _number_kind(annotation: Any) -> type | None:
    """``int`` or ``float`` where a field's type is one, or a union holding one (``int | None``)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = {_number_kind(member) for member in typing.get_args(annotation)} - {None}
        return int if int in kinds else next(iter(kinds), None)
    return annotation if annotation in (int, float) else None


@dataclass(frozen=True)
class CliOption:
    """How one config field appears as an option of ``taxopost run``.

    Fields without one get an option named after them (``size_threshold`` -> ``--size-threshold``,
    a boolean ``--reweight/--no-reweight``) with the schema's description as help.

    Attributes
    ----------
    flag : str
        The option, e.g. ``"--threshold"``.
    help : str
        Help text; the schema's description when empty.
    parse : {"value", "rank_values", "comma_list"}
        ``rank_values``: repeatable ``RANK=VALUE`` into a mapping; ``comma_list``: ``a,b,c``.
    metavar : str
    """

    flag: str = ""
    help: str = ""
    parse: Literal["value", "rank_values", "comma_list"] = "value"
    metavar: str = ""


@dataclass(frozen=True)
class OfflineStep:
    """A prepared pipeline step of a transforming task, ready to run on score matrices.

    Attributes
    ----------
    key : tuple
        What determines the step's output (two steps with equal keys give equal outputs).
    state : object
        What the task resolved from its config (a masking step's kept classes).
    warnings : tuple of str
    """

    key: tuple
    state: Any = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transformed:
    """What a transforming step returns for a score matrix.

    Attributes
    ----------
    scores : ndarray of shape (n_rows, n_classes), float32
        Probabilities (rows may sum to less than 1 when ``normalized`` is False).
    winner : ndarray of shape (n_rows,), intp
        The predicted class of each row after the step.
    normalized : bool
        Whether every row of ``scores`` sums to 1.
    """

    scores: np.ndarray
    winner: np.ndarray
    normalized: bool


class TaskSpec:
    """Base of every task spec; subclasses set the class attributes below.

    ``offline``: ``"transform"`` for a task that maps a score matrix to another one (it then
    implements :meth:`prepare_offline` and :meth:`transform`), ``"decision"`` for the roll-up
    that ends a pipeline, ``None`` for a task that needs the platform (image sizes, say).
    ``needs_groups``: the transform combines rows of one occurrence, so a pipeline passes it
    ``groups=`` (one occurrence id per row) and refuses to run it without them.
    ``form_widgets`` names, per config field, an admin widget of
    :data:`taxopost.postprocessing.forms.WIDGETS`; ``cli_options`` shapes ``taxopost run``.
    """

    key: ClassVar[str]
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    config_model: ClassVar[type[TaskConfig]]
    offline: ClassVar[Literal["transform", "decision"] | None] = None
    needs_groups: ClassVar[bool] = False
    form_widgets: ClassVar[Mapping[str, str]] = {}
    cli_options: ClassVar[Mapping[str, CliOption]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [name for name in ("key", "name", "config_model") if not getattr(cls, name, None)]
        if missing:
            raise TypeError(f"task spec {cls.__qualname__} must define {', '.join(missing)}")
        if not KEY_PATTERN.match(cls.key):
            raise TypeError(f"task spec {cls.__qualname__}: key {cls.key!r} must match {KEY_PATTERN.pattern}")
        if not (isinstance(cls.config_model, type) and issubclass(cls.config_model, TaskConfig)):
            raise TypeError(f"task spec {cls.__qualname__}: config_model must be a TaskConfig subclass")
        fields = set(cls.config_model.model_fields)
        for hints in ("form_widgets", "cli_options"):
            unknown = set(getattr(cls, hints)) - fields
            if unknown:
                raise TypeError(f"task spec {cls.__qualname__}: {hints} names no config field {sorted(unknown)}")
        if cls.offline == "transform" and cls.transform.__func__ is TaskSpec.transform.__func__:
            raise TypeError(f"task spec {cls.__qualname__} is offline='transform' but does not implement transform")
        registry.register(cls)

    @classmethod
    def prepare_offline(
        cls,
        config: TaskConfig,
        category_map: CategoryMap,
        *,
        where: str,
        base_dir: Path,
        taxa_lists: Callable[[str], list[int]] | None = None,
    ) -> OfflineStep:
        """Resolve what ``config`` names for a pipeline on ``category_map`` (``where``: its JSON path)."""
        return OfflineStep(key=(cls.key, config.model_dump_json()))

    @classmethod
    def transform(
        cls,
        values: np.ndarray,
        category_map: CategoryMap,
        config: TaskConfig,
        step: OfflineStep,
        *,
        logits: bool,
        normalized: bool,
        progress: Callable[[int], None] | None = None,
    ) -> Transformed:
        """Map ``values`` (probabilities, or logits with ``logits=True``) to new scores.

        A spec with ``needs_groups`` also takes ``groups``: ndarray of shape (n_rows,), int64.
        """
        raise NotImplementedError
