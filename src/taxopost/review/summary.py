"""What one job changed: classifications by rank before and after, and against identifications.

"Before" is the taxon of each source the job derived from (its ``applied_to``), "after" the
taxon the job wrote. Against a person's identification a prediction is correct when it is the
identified taxon or one of its ancestors (a roll-up to the right genus is correct, only less
specific); a change is *corrected* when it makes a wrong prediction correct and *regressed* the
other way round, as :func:`taxopost.evaluation.metrics.corrections` defines them for every
report. Everything is counted in the database or with one vectorised pass, so the page costs
the same for ten changes or ten thousand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count

from taxopost.core.ranks import RANK_CODE, UNKNOWN
from taxopost.evaluation.metrics import Corrections, corrections
from taxopost.jobs.models import Job
from taxopost.observations.models import Classification, Identification
from taxopost.taxa.operations import load_taxonomy


@dataclass
class JobReview:
    job: Job
    before: dict[str, int]
    after: dict[str, int]
    changed: int
    identified: int = 0  # changed classifications whose occurrence a person identified
    corrected: int = 0
    regressed: int = 0
    still_correct: int = 0
    still_wrong: int = 0
    ranks: list[str] = field(default_factory=list)


def rank_order(ranks: Iterable[str]) -> list[str]:
    """Fine to coarse, then "unknown" (Not identifiable) last."""
    known = sorted((r for r in set(ranks) if r in RANK_CODE), key=RANK_CODE.get, reverse=True)
    return known + ([UNKNOWN] if UNKNOWN in set(ranks) else [])


def review_job(job: Job) -> JobReview:
    outputs = Classification.objects.filter(job=job)
    after = {row["taxon__rank"]: row["n"] for row in outputs.values("taxon__rank").annotate(n=Count("id"))}
    before = {
        row["applied_to__taxon__rank"]: row["n"]
        for row in outputs.values("applied_to__taxon__rank").annotate(n=Count("id"))
    }
    review = JobReview(job=job, before=before, after=after, changed=sum(after.values()))
    review.ranks = rank_order([*before, *after])
    rows = list(
        outputs.filter(detection__occurrence__identifications__withdrawn=False)
        .distinct()
        .values_list("id", "detection__occurrence_id", "applied_to__taxon_id", "taxon_id")
    )
    if rows:
        outcome = correctness(rows)
        review.identified = len(rows)
        review.corrected = int(outcome.corrected.sum())
        review.regressed = int(outcome.regressed.sum())
        review.still_correct = int(outcome.still_correct.sum())
        review.still_wrong = int(outcome.still_wrong.sum())
    return review


def correctness(rows: list[tuple[int, int, int, int]]) -> Corrections:
    """For rows ``(classification, occurrence, source taxon, output taxon)`` of identified occurrences:
    whether the source (the baseline) and the output were correct, by the evaluation's definition."""
    occurrences = {occurrence for _, occurrence, _, _ in rows}
    identified = Identification.objects.filter(occurrence_id__any_of=occurrences).current_by_occurrence()
    truth = {occurrence: current.taxon_id for occurrence, current in identified.items()}
    taxonomy = load_taxonomy()
    true = taxonomy.to_core(truth.get(occurrence) for _, occurrence, _, _ in rows)
    before = taxonomy.to_core(source for _, _, source, _ in rows)
    after = taxonomy.to_core(output for *_, output in rows)
    return corrections(true, after, before, taxonomy.core, allow_missing=True)


def changed_rows(job: Job, ids: list[int]) -> dict[int, tuple[bool, bool]]:
    """Correctness before and after for these output classifications, where their occurrence is identified."""
    rows = list(
        Classification.objects.filter(id__any_of=ids, detection__occurrence__identifications__withdrawn=False)
        .distinct()
        .values_list("id", "detection__occurrence_id", "applied_to__taxon_id", "taxon_id")
    )
    if not rows:
        return {}
    outcome = correctness(rows)
    return {
        row[0]: (bool(b), bool(a)) for row, b, a in zip(rows, outcome.baseline_correct, outcome.correct, strict=True)
    }
