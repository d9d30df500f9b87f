"""The shape every post-processing task takes on the platform: its adapter.

A task's spec (:mod:`taxopost.tasks`, no Django) says what it is and accepts; its adapter is
one file, ``postprocessing/tasks/<key>.py``, a subclass of :class:`PostProcessingTask` naming
that ``spec``; defining it registers it in :mod:`taxopost.postprocessing.registry`. The
framework (:mod:`taxopost.postprocessing.running`) owns everything else: chunking, transactions, locking
of sources, demotion, replacement of earlier outputs, determinations, progress, dry runs and
metrics. A task only says which of its inputs it looks at (:meth:`select`, a filter of
:meth:`inputs`) and what it would write for a chunk of them (:meth:`process`), reading each chunk
in a fixed number of queries and computing with :mod:`taxopost.core`. :meth:`process` must depend
only on the ids it is given and the config (never on the order chunks run in): chunks run in
parallel on several workers.

A plan lists classification ids by default. A task that works on detections, whether or not
they hold a classification (the small-size filter, as Antenna's), plans detection ids instead
(:meth:`PostProcessingTask.plan_rows`, :meth:`PostProcessingTask.chunk_inputs`); a change it makes
to a detection without a classification has no source (``source_id`` None) and demotes nothing.
:meth:`PostProcessingTask.warnings` tells the preview, the CLI, the API and the admin what to
think twice about before a run (a taxa list that keeps too little, say).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

from django.db.models import Count, F, Q, QuerySet

from taxopost.jobs.models import Job
from taxopost.ml.models import Algorithm
from taxopost.ml.operations import post_processing_algorithm_key
from taxopost.observations import chains
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
    #: Its changes of one occurrence stand or fall together: each holds what every member said
    #: (a consensus), so if one member of the plan is no longer valid when the chunk reads or
    #: commits, none of the occurrence is written (a re-run combines it as it is then).
    whole_occurrences: ClassVar[bool] = False

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

    def __init__(
        self, config: TaskConfig, scope: Scope, *, job: Job | None = None, dry_run: bool = False, stack: bool = False
    ) -> None:
        self.config = config
        self.scope = scope
        self.job = job
        self.dry_run = dry_run
        self.stack = stack
        self.taxonomy: DbTaxonomy = load_taxonomy()
        self._output_keys: set[str] = set()
        self._steps: tuple[frozenset[int], frozenset[int]] | None = None

    def prepare(self) -> None:
        """Resolve what the config names (taxa lists, algorithms); raise InputError if invalid."""

    @abstractmethod
    def select(self) -> QuerySet[Classification]:
        """The classifications this run examines, a filter of :meth:`inputs` (the runner orders
        and cuts them into chunks)."""

    def candidates(self, queryset: QuerySet[Classification]) -> QuerySet[Classification]:
        """The rows of ``queryset`` (chains' inputs) this task would examine: what :meth:`select`
        keeps of :meth:`inputs`. A task of whole occurrences says so, so that an occurrence is not
        taken for partly done because of a chain it never combines (an answer without a vector)."""
        return queryset

    def inputs(self, detections: list[int] | None = None) -> QuerySet[Classification]:
        """What this run starts from on its scope: the one rule, see :mod:`taxopost.observations.chains`.

        Each chain's current answer; but where the chain holds an earlier output of this task
        with another config, the source of that output (which the run then replaces), and
        nothing where it holds this config's output (for a task of whole occurrences: unless
        another chain of its occurrence does not). With ``stack``, always the current answer.
        ``detections``: only the chains of these detections (a chunk of a plan of detections).
        """
        tips = self.scope.terminal_classifications()
        if detections is not None:
            tips = tips.filter(detection_id__any_of=detections)
        if self.stack:
            return tips
        earlier, same = self._step_algorithms()
        todo = chains.run_inputs(tips, earlier, same)
        if not (self.whole_occurrences and same):
            return todo
        # An occurrence is done only where every chain of it holds this config's output: one that
        # ran on part of it (a capture set holding some of its images) is combined again whole,
        # replacing that output, instead of leaving it with two answers. Looked for only where
        # this config's output and chains without it share an occurrence (a no-op re-run pays one query).
        written = Classification.objects.filter(algorithm_id__any_of=sorted(same), replaced_by=None)
        in_scope = written.filter(detection_id__in=tips.values("detection_id"))
        if not in_scope.exists():
            return todo  # no output of this config in the scope: nothing of it can be partial
        undone = _occurrences(self.candidates(todo).exclude(detection__occurrence=None))
        partial = set(_occurrences(written.filter(detection__occurrence_id__any_of=undone))) if undone else set()
        partial |= _split(in_scope)  # runs over overlapping parts: every chain done, not over the same members
        if not partial:
            return todo
        partial = sorted(partial)
        again = chains.run_inputs(tips, earlier, ()).filter(detection__occurrence_id__any_of=partial)
        return Classification.objects.filter(Q(id__in=todo.values("id")) | Q(id__in=again.values("id")))

    def resolve(self, ids: list[int], *, lock: bool) -> dict[int, chains.Input]:
        """The inputs among ``ids`` still valid now, each with the tail this run replaces (for a
        task of whole occurrences, this config's own output too: see :meth:`inputs`)."""
        earlier, same = self._step_algorithms()
        if self.stack:
            return chains.resolve(ids, (), lock=lock)
        return chains.resolve(ids, earlier if self.whole_occurrences else earlier - same, lock=lock)

    def earlier_algorithms(self) -> QuerySet[Algorithm]:
        """The algorithms whose outputs a run of this task replaces: this task's own."""
        return Algorithm.objects.filter(task_type=self.key)

    def _step_algorithms(self) -> tuple[frozenset[int], frozenset[int]]:
        """(earlier algorithms, those of them this run writes under), read once after :meth:`prepare`."""
        if self._steps is None:
            found = list(self.earlier_algorithms().values_list("pk", "key"))
            self._steps = (
                frozenset(pk for pk, _ in found),
                frozenset(pk for pk, key in found if key in self._output_keys),
            )
        return self._steps

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

    def chunk_inputs(self, ids: list[int]) -> tuple[dict[int, chains.Input], list[int]]:
        """A chunk's inputs still valid when it runs (:meth:`resolve`: another job may have
        demoted some since the plan), and the ids :meth:`process` gets, in id order.

        By default the plan lists classifications, and :meth:`process` gets the valid ones. A task
        whose plan lists detections overrides this: :meth:`process` gets every planned detection,
        and the inputs are those of its classified ones.
        """
        inputs = self.resolve(ids, lock=False)
        return inputs, sorted(inputs)

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
        self._output_keys.add(key)
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


def _occurrences(classifications: QuerySet[Classification]) -> list[int]:
    """The distinct occurrence ids of these classifications' detections, ascending."""
    return sorted(set(classifications.values_list("detection__occurrence_id", flat=True)))


def _split(outputs: QuerySet[Classification]) -> set[int]:
    """The occurrences whose outputs among these were combined over different members (the
    ``members`` a whole-occurrence task records in ``details``): two runs over overlapping parts.
    One aggregate in the database: reading every output's details cost a no-op re-run 2.5x."""
    counted = (
        outputs.exclude(detection__occurrence=None)
        .values("detection__occurrence_id")
        .annotate(n=Count("details__members", distinct=True))
        .filter(n__gt=1)
    )
    return set(counted.values_list("detection__occurrence_id", flat=True))
