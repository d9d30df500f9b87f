"""The capture-set evaluation page: the report `taxopost evaluate-capture-set` writes, in the browser.

Seconds of work, so the report is cached per state of the capture set's data and computed by
one request at a time (:mod:`taxopost.review.page_cache`).
"""

from __future__ import annotations

import tempfile

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.html import escape

from taxopost.access.pages import page_denied
from taxopost.errors import InputError
from taxopost.observations.evaluation import evaluate_capture_set, write_capture_set_evaluation
from taxopost.observations.models import CaptureSet
from taxopost.review.page_cache import cached, page_key


def capture_set_evaluation(request, pk: int) -> HttpResponse:
    """Evaluate the default pipelines on the capture set's identified model outputs (self-contained HTML)."""
    capture_set = get_object_or_404(CaptureSet, pk=pk)
    if (denied := page_denied(request, capture_set.project_id)) is not None:
        return denied
    algorithm = request.GET.get("algorithm") or None
    status, page = cached(page_key("evaluation", capture_set, algorithm), lambda: _report(capture_set, algorithm))
    return HttpResponse(page, status=status)


def _report(capture_set: CaptureSet, algorithm: str | None) -> tuple[int, str]:
    """``(200, the report)``, or ``(400, why there is nothing to evaluate)``: both cached alike."""
    try:
        evaluation = evaluate_capture_set(capture_set, algorithm=algorithm)
    except InputError as exc:
        return (
            400,
            f"<h1>Evaluation of {escape(capture_set.name)}</h1><p>Nothing to evaluate: {escape(exc.message)}</p>",
        )
    with tempfile.TemporaryDirectory(prefix="taxopost-evaluation-") as folder:
        written = write_capture_set_evaluation(evaluation, folder)
        return 200, written["report.html"].read_text(encoding="utf-8")
