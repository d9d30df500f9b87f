"""The capture-set review page (view role on its project): what a chosen job changed, and whether it helped.

The page's body (the job picker, the job's summary, chart and each page of its rows with their
chains and correctness) is cached per state of the capture set's data
(:mod:`taxopost.review.page_cache`); the admin's frame around it is the user's
(:mod:`taxopost.review.frame`).
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString, mark_safe

from taxopost.access.pages import page_row
from taxopost.jobs.models import Job
from taxopost.observations.models import CaptureSet, Classification
from taxopost.observations.provenance import classification_chains
from taxopost.review.admin_context import admin_page_context
from taxopost.review.charts import before_after_svg
from taxopost.review.frame import framed_page
from taxopost.review.page_cache import cached, data_version, page_key
from taxopost.review.summary import changed_rows, review_job

ROWS_PER_PAGE = 50


def evaluation_url(capture_set: CaptureSet) -> str | None:
    """The evaluation page of this capture set, once the evaluation app provides one."""
    try:
        return reverse("evaluation:capture-set", args=[capture_set.pk])
    except NoReverseMatch:
        return None


def capture_set_review(request, pk: int) -> HttpResponse:
    capture_set, denied = page_row(request, CaptureSet, pk)
    if denied is not None:
        return denied
    # As numbers: "05", "5" and " 5" are one page, not three computations of it.
    asked, number = _number(request.GET.get("job")), _number(request.GET.get("page"))
    number = 1 if number is None else number
    version = data_version(capture_set)
    if asked is not None:  # a job not among the capture set's: one page saying so, whatever the number
        listed = cached(page_key("review-jobs", capture_set, version=version), lambda: _job_ids(capture_set))
        asked = asked if asked in listed else _NOT_LISTED
    if number != 1:
        # Past the last page (or 0) shows the last page: one computation of it, not one per number asked.
        pages = page_key("review-pages", capture_set, asked, version=version)
        last = cached(pages, lambda: _page_count(capture_set, asked))
        number = number if 1 <= number <= last else last
    key = page_key("review-body", capture_set, asked, number, version=version)
    body = cached(key, lambda: _body(capture_set, asked, number))
    context = {**admin_page_context(request), "title": f"Review: {capture_set.name}", "capture_set": capture_set}
    return framed_page(request, "review/capture_set.html", context, "body", mark_safe(body))


def _body(capture_set: CaptureSet, asked: int | None, number: int) -> SafeString:
    """The page's body for every user who may view it: the job picker and what the chosen job did.

    Rendered here, once per state of the data; only the HTML is kept (unpickling fifty rows with
    their chains would cost a cached request as much as rendering them).
    """
    jobs = _jobs(capture_set)
    chosen = _chosen_job(asked, jobs)
    part = _job_part(chosen, capture_set, number) if chosen is not None else {}
    context = {"capture_set": capture_set, "jobs": jobs, "job": chosen, **part}
    return render_to_string("review/capture_set_body.html", context)


def _page_count(capture_set: CaptureSet, asked: int | None) -> int:
    """How many pages of rows the chosen job's part has (1 when there is no job, or no row)."""
    chosen = _chosen_job(asked, _jobs(capture_set))
    return 1 if chosen is None else _rows(chosen).num_pages


#: What a job asked for that the capture set does not have is keyed as (one key for them all).
_NOT_LISTED = -1


def _job_ids(capture_set: CaptureSet) -> list[int]:
    """The ids of the jobs the picker lists."""
    return [job.pk for job in _jobs(capture_set)]


def _jobs(capture_set: CaptureSet) -> list[Job]:
    """The capture set's jobs the picker lists, newest first."""
    return list(
        Job.objects.filter(scope_type=Job.CAPTURE_SET, scope_id=capture_set.pk, dry_run=False)
        .exclude(status__in=(Job.CREATED, Job.QUEUED))
        .order_by("-created_at", "-id")
    )


def _rows(job: Job) -> Paginator:
    """The job's classifications, in pages of :data:`ROWS_PER_PAGE`."""
    return Paginator(
        Classification.objects.filter(job=job)
        .select_related("taxon", "applied_to__taxon", "detection__occurrence")
        .defer("scores", "logits", "applied_to__scores", "applied_to__logits")
        .order_by("id"),
        ROWS_PER_PAGE,
    )


def _job_part(job: Job, job_capture_set: CaptureSet, number: int) -> dict:
    """What a job changed (by rank, against identifications), its chart and one page of its rows."""
    review = review_job(job)
    title = f"Classifications changed by job {job.pk}, by rank"
    page = _rows(job).get_page(number)
    rows = list(page)
    ids = [row.pk for row in rows]
    chains = classification_chains(ids)
    marks = changed_rows(job, ids)
    part = {
        "job": job,
        "review": review,
        "chart": before_after_svg(review.ranks, review.before, review.after, title=title),
        "page": page,
        "rows": [(row, chains.get(row.pk, []), marks.get(row.pk)) for row in rows],
        "evaluation_url": evaluation_url(job_capture_set),
    }
    return {"job_part": render_to_string("review/job_part.html", part)}


def _number(value: str | None) -> int | None:
    """A query parameter that should be a whole number, else None (the page's default)."""
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def _chosen_job(value: int | None, jobs: list[Job]) -> Job | None:
    """The job asked for, else the latest job that changed something and was not reverted.

    A re-run that found nothing to do (or a job that failed before writing) says nothing about
    the data: the page shows the latest one that did change it, else the latest that succeeded.
    """
    if value is not None:
        return next((job for job in jobs if job.pk == value), None)
    live = [job for job in jobs if job.reverted_at is None]
    changed = next((job for job in live if (job.metrics or {}).get("changed")), None)
    return changed or next((job for job in live if job.status == Job.SUCCEEDED), None)
