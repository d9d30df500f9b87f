"""The capture-set review page (staff only): what a chosen job changed, and whether it helped.

The job's summary and chart read all of its output: they are cached per state of the capture
set's data (:mod:`taxopost.review.page_cache`); the page of rows is read each time.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse

from taxopost.jobs.models import Job
from taxopost.observations.models import CaptureSet, Classification
from taxopost.observations.provenance import classification_chains
from taxopost.review.charts import before_after_svg
from taxopost.review.page_cache import cached, page_key
from taxopost.review.summary import changed_rows, review_job

ROWS_PER_PAGE = 50


def evaluation_url(capture_set: CaptureSet) -> str | None:
    """The evaluation page of this capture set, once the evaluation app provides one."""
    try:
        return reverse("evaluation:capture-set", args=[capture_set.pk])
    except NoReverseMatch:
        return None


@staff_member_required
def capture_set_review(request, pk: int):
    capture_set = get_object_or_404(CaptureSet, pk=pk)
    jobs = list(
        Job.objects.filter(scope_type=Job.CAPTURE_SET, scope_id=capture_set.pk, dry_run=False)
        .exclude(status__in=(Job.CREATED, Job.QUEUED))
        .order_by("-created_at", "-id")
    )
    chosen = _chosen_job(request.GET.get("job"), jobs)
    context = {
        **admin.site.each_context(request),
        "title": f"Review: {capture_set.name}",
        "capture_set": capture_set,
        "jobs": jobs,
        "job": chosen,
        "evaluation_url": evaluation_url(capture_set),
    }
    if chosen is not None:
        review, chart = cached(page_key("review", capture_set, chosen.pk), lambda: _summary(chosen))
        page = Paginator(
            Classification.objects.filter(job=chosen)
            .select_related("taxon", "applied_to__taxon", "detection__occurrence")
            .defer("scores", "logits", "applied_to__scores", "applied_to__logits")
            .order_by("id"),
            ROWS_PER_PAGE,
        ).get_page(request.GET.get("page"))
        ids = [row.pk for row in page]
        chains = classification_chains(ids)
        marks = changed_rows(chosen, ids)
        context.update(
            review=review,
            page=page,
            rows=[(row, chains.get(row.pk, []), marks.get(row.pk)) for row in page],
            chart=chart,
        )
    return TemplateResponse(request, "review/capture_set.html", context)


def _summary(job: Job) -> tuple:
    """What a job changed (by rank, against identifications) and its chart: the page's costly part."""
    review = review_job(job)
    title = f"Classifications changed by job {job.pk}, by rank"
    return review, before_after_svg(review.ranks, review.before, review.after, title=title)


def _chosen_job(value: str | None, jobs: list[Job]) -> Job | None:
    """The job asked for, else the latest job that succeeded and was not reverted."""
    if value and value.isdigit():
        return next((job for job in jobs if job.pk == int(value)), None)
    return next((job for job in jobs if job.status == Job.SUCCEEDED and job.reverted_at is None), None)
