"""Projects, images, capture sets, detections, occurrences, classifications and identifications.

Score vectors are stored as raw little-endian float32 bytes: lossless for float32, compact, and
a chunk of N rows becomes an ``(N, C)`` array with one ``np.frombuffer`` (see ``vectors``).
"""

from __future__ import annotations

import difflib
import re
from typing import NamedTuple

from django.conf import settings
from django.db import models

from taxopost.errors import InputError
from taxopost.ml.models import Algorithm, CategoryMap
from taxopost.taxa.models import Taxon


class Project(models.Model):
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True)
    public = models.BooleanField(default=False, help_text="Anyone, without a login, may view this project's data")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class SourceImage(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    path = models.CharField(max_length=1024)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    timestamp = models.DateTimeField(null=True, blank=True)
    external_id = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="The image's id in the system it came from (an Antenna capture id): what an export to it names.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "path"], name="image_unique_path")]

    def __str__(self) -> str:
        return self.path


class CaptureSet(models.Model):
    """A named set of source images: the usual scope of a post-processing run."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="capture_sets")
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True)
    images = models.ManyToManyField(SourceImage, related_name="capture_sets", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def named(
        name: str | int, *, field: str = "--capture-set", among: models.QuerySet[CaptureSet] | None = None
    ) -> CaptureSet:
        """The capture set called ``name`` (or with this id), else an InputError naming ``field``.

        The one lookup of a capture set that a person typed, for the CLI, the API's filters and
        job scopes: the exact name first, then the name matched without case and punctuation
        (``station 2 july 2024`` finds ``Station 2 · July 2024``), then a number as an id. A miss
        says which names come close (difflib), or which exist. ``among`` limits the search (and
        the names a miss shows) to the capture sets a user may see.
        """
        sets = CaptureSet.objects.all() if among is None else among
        text = str(name).strip()
        found = sets.filter(name=text).first()
        if found is not None:
            return found
        names = dict(sets.values_list("name", "pk"))
        key = _name_key(text)
        same = [other for other in names if _name_key(other) == key] if key else []
        if len(same) == 1:
            return sets.get(pk=names[same[0]])
        if len(same) > 1:
            raise InputError(field, text, f"matches several capture sets: {', '.join(map(repr, sorted(same)))}")
        if text.isdigit() and (by_id := sets.filter(pk=int(text)).first()) is not None:
            return by_id
        keys = {_name_key(other): other for other in names}
        close = [keys[k] for k in difflib.get_close_matches(key, list(keys), n=3, cutoff=0.6)]
        if close:
            reason = f"no capture set has this name; did you mean {' or '.join(map(repr, close))}?"
        elif names:
            shown = sorted(names)[:5]
            more = f" (and {len(names) - len(shown)} more)" if len(names) > len(shown) else ""
            reason = f"no capture set has this name; there are {', '.join(map(repr, shown))}{more}"
        else:
            reason = "no capture set has this name (there is none yet: import predictions first)"
        raise InputError(field, text, reason)

    @staticmethod
    def detections_of(capture_set: CaptureSet | int) -> models.QuerySet[Detection]:
        """The detections on a capture set's images, as a subquery-ready queryset.

        Filters through the membership table alone: ``source_image__capture_sets`` also joins the
        images table, which a count of a large capture set's occurrences then scans for nothing.
        """
        images = CaptureSet.images.through.objects.filter(captureset=capture_set).values("sourceimage_id")
        return Detection.objects.filter(source_image_id__in=images)


def _name_key(name: str) -> str:
    """A name as compared when not exact: case folded, every run of punctuation and spaces one space."""
    return " ".join(re.split(r"[\W_]+", name.casefold())).strip()


class Occurrence(models.Model):
    """One individual seen across detections; its determination is the taxon we now believe."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="occurrences")
    key = models.CharField(max_length=255, help_text="The occurrence's id in the imported data")
    determination = models.ForeignKey(Taxon, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    determination_score = models.FloatField(null=True, blank=True)
    determined_by = models.ForeignKey(
        "Classification", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    determined_by_identification = models.ForeignKey(
        "Identification", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="occurrence_unique_key")]

    def __str__(self) -> str:
        return f"Occurrence {self.key}"


class Detection(models.Model):
    """A bounding box ``[x1, y1, x2, y2]`` in pixels on one source image."""

    source_image = models.ForeignKey(SourceImage, on_delete=models.CASCADE, related_name="detections")
    bbox = models.JSONField(null=True, blank=True)
    relative_area = models.FloatField(
        null=True,
        blank=True,
        help_text="Box area over image area, from a detector of relative boxes that gives no image size (MegaDetector)",
    )
    occurrence = models.ForeignKey(
        Occurrence, null=True, blank=True, on_delete=models.SET_NULL, related_name="detections"
    )
    key = models.CharField(max_length=255, help_text="Natural key within the image: its bbox, or an id")
    confidence = models.FloatField(
        null=True, blank=True, help_text="The detector's confidence in the box (MegaDetector's conf), if known"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source_image", "key"], name="detection_unique_key")]

    def __str__(self) -> str:
        return f"Detection {self.pk} on {self.source_image_id}"


class Classification(models.Model):
    """One prediction for one detection.

    ``terminal`` marks the current answer of its algorithm chain; ``applied_to`` is the
    classification this one was derived from (None for a model's own output). ``replaced_by``
    is the job that re-ran the task which made it (another config: see
    :mod:`taxopost.observations.chains`); a replaced classification is out of its chain until
    that job is reverted.
    """

    # Single-column indexes on detection and algorithm would repeat the composite ones below:
    # every index is paid on each of the millions of inserts.
    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="classifications", db_index=False)
    taxon = models.ForeignKey(Taxon, on_delete=models.PROTECT, related_name="+")
    score = models.FloatField()
    scores = models.BinaryField(null=True, blank=True, help_text="float32 probabilities, little-endian")
    logits = models.BinaryField(null=True, blank=True, help_text="float32 logits, little-endian")
    category_map = models.ForeignKey(CategoryMap, null=True, blank=True, on_delete=models.PROTECT, db_index=False)
    algorithm = models.ForeignKey(Algorithm, on_delete=models.PROTECT, related_name="classifications", db_index=False)
    terminal = models.BooleanField(default=True)
    applied_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.RESTRICT, related_name="derived")
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="classifications"
    )
    details = models.JSONField(default=dict, blank=True, help_text="Evidence of the step that made it")
    created_at = models.DateTimeField(auto_now_add=True)
    replaced_by = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.PROTECT,  # undone by reverting that job: without it, the outputs would be current twice
        related_name="replaced",
        db_index=False,  # the partial index below: most rows are never replaced
        help_text="The job that replaced it by re-running its task with another config",
    )

    class Meta:
        indexes = [
            models.Index(fields=["detection", "terminal"], name="clf_detection_terminal"),
            models.Index(fields=["algorithm", "terminal"], name="clf_algorithm_terminal"),
            models.Index(fields=["replaced_by"], name="clf_replaced_by", condition=models.Q(replaced_by__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.taxon.name} {self.score:.3f}"


class CurrentIdentification(NamedTuple):
    """An occurrence's current identification: its id and taxon."""

    id: int
    taxon_id: int


class IdentificationQuerySet(models.QuerySet):
    def current_by_occurrence(self) -> dict[int, CurrentIdentification]:
        """The current identification of each occurrence among these: its latest one not withdrawn.

        Latest by ``created_at``, then by id (of two at the same time, the one stored last). The
        one rule of determinations, evaluations and reviews; one query for any number of
        occurrences.
        """
        current: dict[int, CurrentIdentification] = {}
        for occurrence_id, identification_id, taxon_id in (
            self.filter(withdrawn=False)
            .order_by("occurrence_id", "-created_at", "-id")
            .values_list("occurrence_id", "id", "taxon_id")
        ):
            current.setdefault(occurrence_id, CurrentIdentification(identification_id, taxon_id))
        return current


class Identification(models.Model):
    """A person's determination of an occurrence: ground truth, always outranks predictions."""

    objects = IdentificationQuerySet.as_manager()

    occurrence = models.ForeignKey(Occurrence, on_delete=models.CASCADE, related_name="identifications")
    taxon = models.ForeignKey(Taxon, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    who = models.CharField(max_length=255, blank=True, help_text="Identifier's name when not a user")
    comment = models.TextField(blank=True)
    withdrawn = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    antenna_id = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Its id in Antenna when imported from there: its key, as a person's name may change",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["occurrence", "taxon", "who", "created_at"], name="identification_unique"),
            models.UniqueConstraint(
                fields=["occurrence", "antenna_id"],
                condition=models.Q(antenna_id__isnull=False),
                name="identification_unique_antenna_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.taxon.name} by {self.who or self.user}"


class DataEdits(models.Model):
    """How many edits of existing rows were made (one row): identifications withdrawn, taxa
    renamed, images taken out of a capture set. The cached pages' data version reads it, since
    such an edit moves no newest id (``taxopost.observations.edits``)."""

    count = models.BigIntegerField(default=0)


class DeterminationChange(models.Model):
    """History of an occurrence's determination: what it became, when, and which job did it."""

    occurrence = models.ForeignKey(Occurrence, on_delete=models.CASCADE, related_name="determination_history")
    taxon = models.ForeignKey(Taxon, null=True, on_delete=models.PROTECT, related_name="+")
    score = models.FloatField(null=True)
    classification = models.ForeignKey(Classification, null=True, on_delete=models.SET_NULL, related_name="+")
    identification = models.ForeignKey(Identification, null=True, on_delete=models.SET_NULL, related_name="+")
    job = models.ForeignKey("jobs.Job", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
