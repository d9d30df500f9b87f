"""The capture-set evaluation page: the report `taxopost evaluate-capture-set` writes, in the browser."""

from __future__ import annotations

import tempfile

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.html import escape

from taxopost.access.pages import page_denied
from taxopost.errors import InputError
from taxopost.observations.evaluation import evaluate_capture_set, write_capture_set_evaluation
from taxopost.observations.models import CaptureSet


def capture_set_evaluation(request, pk: int) -> HttpResponse:
    """Evaluate the default pipelines on the capture set's identified model outputs (self-contained HTML)."""
    capture_set = get_object_or_404(CaptureSet, pk=pk)
    if (denied := page_denied(request, capture_set.project_id)) is not None:
        return denied
    try:
        evaluation = evaluate_capture_set(capture_set, algorithm=request.GET.get("algorithm") or None)
    except InputError as exc:
        page = f"<h1>Evaluation of {escape(capture_set.name)}</h1><p>Nothing to evaluate: {escape(exc.message)}</p>"
        return HttpResponse(page, status=400)
    with tempfile.TemporaryDirectory(prefix="taxopost-evaluation-") as folder:
        written = write_capture_set_evaluation(evaluation, folder)
        return HttpResponse(written["report.html"].read_text(encoding="utf-8"))
