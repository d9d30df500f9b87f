"""A job's metrics and result as tables, the same on its admin page and in a run's preview.

Metrics are counts (:meth:`taxopost.jobs.summary.Summary.as_metrics`): the totals read as one
table, the rank transitions and the most frequent target taxa as tables of their own; what the
job replaces is said in words by :func:`~taxopost.jobs.replacements.replacement_notes`. Anything
else a task reports, and the result's other parts, are key/value tables, never a JSON dump.
"""

from __future__ import annotations

from django.template.loader import render_to_string

from taxopost.ml.admin import key_values, scalar_text

#: The totals of a run, in the order a page lists them, with their labels.
TOTALS = {
    "examined": "examined",
    "changed": "changed",
    "restored": "sources current again",
    "superseded": "superseded by another job",
    "determinations_changed": "determinations changed",
}
#: Counts said elsewhere (the replacement notes) or as tables of their own.
SHOWN_APART = {"replaced", "replaced_later", "skipped", "transitions", "to_taxa"}


def metrics_html(metrics: dict | None, *, dry_run: bool = False) -> str:
    """The metrics as tables: totals, skipped rows by reason, rank transitions and top taxa by count."""
    metrics = metrics or {}
    if not metrics:
        return "–"
    totals = [(label, scalar_text(metrics[key])) for key, label in TOTALS.items() if key in metrics]
    replaced = sum((metrics.get("replaced") or {}).values()) + sum((metrics.get("replaced_later") or {}).values())
    if replaced:
        totals.append(("earlier outputs replaced", scalar_text(replaced)))
    other = {key: value for key, value in metrics.items() if key not in TOTALS and key not in SHOWN_APART}
    context = {
        "totals": totals,
        "skipped": _counts(metrics.get("skipped")),
        "transitions": [(t.replace(" -> ", " → "), n) for t, n in _counts(metrics.get("transitions"))],
        "to_taxa": _counts(metrics.get("to_taxa")),
        "other": key_values(other) if other else "",
        "dry_run": dry_run,
    }
    return render_to_string("postprocessing/job_metrics.html", context)


def result_html(result: dict | None) -> str:
    """The result: warnings as sentences, a preview's sample as a table, the rest as key/value lists."""
    result = result or {}
    if not result:
        return "–"
    preview = result.get("preview") or {}
    rest = {key: value for key, value in result.items() if key not in ("warnings", "preview")}
    context = {
        "warnings": [w.get("message", "") if isinstance(w, dict) else str(w) for w in result.get("warnings") or []],
        "sample": preview.get("sample") or [],
        "rest": key_values(rest) if rest else "",
    }
    return render_to_string("postprocessing/job_result.html", context)


def _counts(counts: dict | None) -> list[tuple[str, str]]:
    return [(name, scalar_text(count)) for name, count in (counts or {}).items()]
