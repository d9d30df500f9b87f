"""The capture-set evaluation page: the report `taxopost evaluate-capture-set` writes, in the admin.

The report is a self-contained HTML file (its figures inlined); the page shows its body inside
the admin's header and breadcrumbs. Seconds of work, so the body is cached per state of the
capture set's data and computed by one request at a time (:mod:`taxopost.review.page_cache`);
the access check comes first, and the admin's frame around it is the user's own
(:mod:`taxopost.review.frame`).
"""

from __future__ import annotations

import re
import tempfile

from django.http import HttpResponse
from django.utils.html import escape
from django.utils.safestring import mark_safe

from taxopost.access.pages import page_row
from taxopost.errors import InputError
from taxopost.ml.models import Algorithm
from taxopost.observations.evaluation import evaluate_capture_set, write_capture_set_evaluation
from taxopost.observations.models import CaptureSet
from taxopost.review.admin_context import admin_page_context
from taxopost.review.frame import framed_page
from taxopost.review.page_cache import cached, page_key

#: The report's body without its generic title (the page's title names the capture set).
_BODY = re.compile(r"<body[^>]*>\s*(?:<h1>.*?</h1>)?(?P<body>.*)</body>", re.DOTALL)


def capture_set_evaluation(request, pk: int) -> HttpResponse:
    """Evaluate the default pipelines on the capture set's identified model outputs."""
    capture_set, denied = page_row(request, CaptureSet, pk)
    if denied is not None:
        return denied
    algorithm = request.GET.get("algorithm") or None
    if algorithm is None or Algorithm.objects.filter(key=algorithm, category_map__isnull=False).exists():
        key = page_key("evaluation-body", capture_set, algorithm)
        status, body = cached(key, lambda: _report(capture_set, algorithm))
    else:  # refused before any vector is read; not cached, so that made-up keys cannot fill the cache
        status, body = _report(capture_set, algorithm)
    context = {**admin_page_context(request), "title": f"Evaluation: {capture_set.name}", "capture_set": capture_set}
    # The report escapes what it prints; see _report.
    return framed_page(request, "review/evaluation.html", context, "report", mark_safe(body), status=status)


def _report(capture_set: CaptureSet, algorithm: str | None) -> tuple[int, str]:
    """``(200, the report's body)``, or ``(400, why there is nothing to evaluate)``: both cached alike."""
    try:
        evaluation = evaluate_capture_set(capture_set, algorithm=algorithm)
    except InputError as exc:
        return 400, f'<p class="errornote">Nothing to evaluate: {escape(exc.message)}</p>'
    with tempfile.TemporaryDirectory(prefix="taxopost-evaluation-") as folder:
        written = write_capture_set_evaluation(evaluation, folder)
        report = written["report.html"].read_text(encoding="utf-8")
    match = _BODY.search(report)
    if match is None:  # not the report's layout: shown as text rather than guessed at
        return 200, f"<pre>{escape(report)}</pre>"
    return 200, match.group("body")
