"""The shape every post-processing task takes on the platform: its adapter.

A task's spec (:mod:`taxopost.tasks`, no Django) says what it is and accepts; its adapter is
one file, ``postprocessing/tasks/<key>.py``, a subclass of :class:`PostProcessingTask` naming
that ``spec``; defining it registers it in :mod:`taxopost.postprocessing.registry`. The
framework (:mod:`taxopost.postprocessing.running`) owns everything else: chunking, transactions, locking
of sources, demotion, determinations, progress, dry runs and metrics. A task only says which
classifications it looks at (:meth:`select`) and what it would write for a chunk of them
(:meth:`process`), reading each chunk in a fixed number of queries and computing with
:mod:`taxopost.core`. :meth:`process` must depend only on the ids it is given and the config
(never on the order chunks run in): chunks run in parallel on several workers.

A plan lists classification ids by default. A task that works on detections, whether or not
they hold a classification (the small-size filter, as Antenna's), plans detection ids instead
(:meth:`PostProcessingTask.plan_rows`, :meth:`PostProcessingTask.pending`); a change it makes
to a detection without a classification has no source (``source_id`` None) and demotes nothing.
:meth:`PostProcessingTask.warnings` tells the preview, the CLI, the API and the admin what to
think twice about before a run (a taxa list that keeps too little, say).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

from django.db.models import F, QuerySet

from taxopost.jobs.models import Job
from taxopost.ml.models import Algorithm
from taxopost.ml.operations import post_processing_algorithm_key
from taxopost.observations.models import CaptureSet, Classification, Detection
from taxopost.postprocessing import registry
from taxopost.tasks import TaskConfig, TaskSpec
from taxopost.taxa.operations import DbTaxonomy, load_taxonomy


@dataclass(frozen=True)
class Scope:
    """What a task runs on: a capture set or one occurrence."""

    kind: str
    id: int

    def detections(self) -> QuerySet[Detection]:
        if self.kind == Job.CAPTURE_SET:
            return CaptureSet.detections_of(self.id)
        return Detection.objects.filter(occurrence_id=self.id)

    def terminal_classifications(self) -> QuerySet[Classification]:
        """Current answers of every algorithm chain on the scope's detections."""
        return Classification.objects.filter(terminal=True, detection__in=self.detections())


@dataclass(slots=True)
class NewClassification:
    """The fields of a classification a task would write (plain values: chunks hold thousands)."""

    detection_id: int
    taxon_id: int
    score: float
    algorithm: Algorithm
    details: dict
    scores: bytes | None = None
    logits: bytes | None = None
    category_map_id: int | None = None


@dataclass
class Change:
    """One classification a task would write: derived from ``source_id``, which it demotes
    (None: a detection's first classification, derived from nothing)."""

    source_id: int | None
    new: NewClassification
    occurrence_id: int | None
    from_name: str
    from_rank: str
    to_name: str
    to_rank: str

    @property
    def score(self) -> float:
        return self.new.score

    @property
    def detection_id(self) -> int:
        return self.new.detection_id


@dataclass
class ChunkResult:
    """What a task would do with one chunk: the changes, and what it skipped and why."""

    changes: list[Change] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    examined: int = 0

    def add_change(
        self,
        source_id: int | None,
        *,
        detection_id: int,
        occurrence_id: int | None,
        taxon_id: int,
        score: float,
        algorithm: Algorithm,
        details: dict,
        before: tuple[str, str],
        after: tuple[str, str],
        scores: bytes | None = None,
        logits: bytes | None = None,
        category_map_id: int | None = None,
    ) -> None:
        """Record a new classification derived from ``source_id``; ``before``/``after``: (name, rank)."""
        new = NewClassification(
            detection_id=detection_id,
            taxon_id=taxon_id,
            score=score,
            algorithm=algorithm,
            details=details,
            scores=scores,
            logits=logits,
            category_map_id=category_map_id,
        )
        self.changes.append(Change(source_id, new, occurrence_id, *before, *after))


class PostProcessingTask(ABC):
    """Base of every adapter; a concrete one names its ``spec`` and implements two methods.

    ``key``, ``name``, ``version``, ``description`` and ``config_model`` come from the spec.
    """

    spec: ClassVar[type[TaskSpec]]
    key: ClassVar[str]
    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str]
    config_model: ClassVar[type[TaskConfig]]
    #: Classifications per chunk: 1,000 vectors of 2,500 float32 classes are 10 MB in memory,
    #: few enough round trips per row, and SQLite still writes a chunk in one statement per table.
    chunk_size: ClassVar[int] = 1000

    def __init_subclass__(cls, **kwargs) -> None:
        """Check the contract when an adapter is defined, as Antenna's tasks do: a TypeError at import."""
        super().__init_subclass__(**kwargs)
        spec = getattr(cls, "spec", None)
        unimplemented = [
            name for name in ("select", "process") if getattr(getattr(cls, name), "__isabstractmethod__", False)
        ]
        if spec is None and unimplemented:
            return  # an abstract base of adapters
        if not (isinstance(spec, type) and issubclass(spec, TaskSpec)):
            raise TypeError(f"post-processing task {cls.__qualname__} must name its spec (a TaskSpec subclass)")
        if unimplemented:
            raise TypeError(f"post-processing task {cls.__qualname__} must implement {', '.join(unimplemented)}")
        cls.key, cls.name, cls.version = spec.key, spec.name, spec.version
        cls.description, cls.config_model = spec.description, spec.config_model
        registry.register(cls)

    def __init__(self, config: TaskConfig, scope: Scope, *, job: Job | None = None, dry_run: bool = False) -> None:
        self.config = config
        self.scope = scope
        self.job = job
        self.dry_run = dry_run
        self.taxonomy: DbTaxonomy = load_taxonomy()

    def prepare(self) -> None:
        """Resolve what the config names (taxa lists, algorithms); raise InputError if invalid."""

    @abstractmethod
    def select(self) -> QuerySet[Classification]:
        """The classifications this run examines (the runner orders and cuts them into chunks)."""

    @abstractmethod
    def process(self, ids: list[int]) -> ChunkResult:
        """What to write for these classifications: reads only, a fixed number of queries."""

    def plan_rows(self) -> QuerySet:
        """``(id, occurrence id)`` of what a run examines, by occurrence then id: the plan's rows.

        Classifications by default (:meth:`select`); a task working on detections lists those.
        """
        return (
            self.select()
            .order_by(F("detection__occurrence_id").asc(nulls_last=True), "id")
            .values_list("id", "detection__occurrence_id")
        )

    def pending(self, ids: list[int]) -> list[int]:
        """Of a chunk's planned ids, those to process when it runs, in id order: by default the
        classifications still terminal (another job may have demoted some since the plan)."""
        still_terminal = Classification.objects.filter(id__any_of=ids, terminal=True)
        return list(still_terminal.order_by("id").values_list("id", flat=True))

    def warnings(self) -> list[dict]:
        """What a user should know before running this config on this scope (after :meth:`prepare`).

        Each warning is a dict with a ``message`` (one line, with the numbers) and the numbers
        themselves, for the API. None by default.
        """
        return []

    def output_algorithm(
        self, *, name: str, config: dict, source: Algorithm | None = None, category_map_id: int | None = None
    ) -> Algorithm:
        """The algorithm this task writes under, keyed by task, config (and source algorithm).

        Returns the stored one, or an unsaved instance that the runner saves with the first
        classification written under it: previews and runs that change nothing create nothing.
        """
        key = post_processing_algorithm_key(self.key, config, source)
        existing = Algorithm.objects.filter(key=key).first()
        if existing is not None:
            return existing
        return Algorithm(
            key=key,
            name=name,
            version=self.version,
            task_type=self.key,
            config=config,
            source_algorithm=source,
            category_map_id=category_map_id,
        )

    def named(self, core_index: int) -> tuple[str, str]:
        """A core taxon's (name, rank); ``("", "")`` for no taxon."""
        if core_index < 0:
            return "", ""
        return self.taxonomy.core.names[core_index], self.taxonomy.core.rank_of(core_index)
