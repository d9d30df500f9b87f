"""Write an evaluation or a calibration to a folder: JSON, PNG figures and a self-contained HTML page.

The only place where the typed results of :mod:`taxopost.evaluation` become dicts and text:
:func:`evaluation_record` is the content of ``metrics.json`` and :func:`calibration_record`
that of ``calibration.json``; the figures and the page are drawn from those records. The HTML
report embeds its figures as base64 PNG and needs nothing else: it can be mailed or attached
to an issue as one file.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from matplotlib.figure import Figure

from taxopost.errors import InputError
from taxopost.evaluation import plots
from taxopost.evaluation.calibration import CalibrationReport, HeldOutEvaluation, RankCalibration, ThresholdCalibration
from taxopost.evaluation.evaluate import Evaluation, ModeDisagreement, PipelineEvaluation
from taxopost.evaluation.metrics import OUTCOMES, ConfidenceBins, MetricsSummary
from taxopost.evaluation.sweep import RiskCoverage
from taxopost.io.results import write_files_atomically

EVALUATION_FIGURES: dict[str, tuple[str, Callable]] = {
    "risk_coverage.png": ("Risk-coverage curves by rank", plots.risk_coverage_figure),
    "coverage_by_rank.png": ("Coverage by final rank", plots.coverage_figure),
    "accuracy_by_confidence.png": ("Accuracy and roll-up rate by input confidence", plots.confidence_figure),
    "mode_disagreement.png": ("Where lineage and distribution disagree", plots.disagreement_figure),
}
CALIBRATION_FIGURES: dict[str, tuple[str, Callable]] = {
    "calibration.png": ("Calibration curves", plots.calibration_figure)
}
#: Every file :func:`write_evaluation` and :func:`write_calibration` write (or remove) in their folder.
EVALUATION_FILES = ("metrics.json", "report.html", *EVALUATION_FIGURES)
CALIBRATION_FILES = ("calibration.json", "report.html", *CALIBRATION_FIGURES)


# -- records: the JSON files' content ----------------------------------------------------------


def evaluation_record(evaluation: Evaluation) -> dict[str, object]:
    """The content of ``metrics.json`` (NaN kept; :func:`jsonable` writes it as null)."""
    return {
        "n_rows": evaluation.n_rows,
        "ranks": list(evaluation.ranks),
        "pipelines": [_pipeline_record(entry) for entry in evaluation.pipelines],
        "mode_disagreement": [_disagreement_record(pair) for pair in evaluation.mode_disagreement],
        "warnings": list(evaluation.warnings),
    }


def _pipeline_record(entry: PipelineEvaluation) -> dict[str, object]:
    record: dict[str, object] = {"name": entry.name, "steps": entry.pipeline.describe()}
    record.update(_metrics_record(entry.metrics))
    if entry.risk_coverage is not None:
        record["risk_coverage"] = {rank: _curve_record(curve) for rank, curve in entry.risk_coverage.items()}
    if entry.occurrences is not None:
        record["occurrences"] = asdict(entry.occurrences)
    if entry.consensus:
        record["consensus"] = [asdict(counts) for counts in entry.consensus]
    return record


def _metrics_record(metrics: MetricsSummary) -> dict[str, object]:
    return {
        "n": metrics.n,
        "accuracy": metrics.accuracy,
        "baseline_accuracy": metrics.baseline_accuracy,
        "exact_accuracy": metrics.exact_accuracy,
        "coverage": dict(metrics.coverage),
        "precision": dict(metrics.precision),
        **asdict(metrics.outcomes),
        "hierarchical_precision": metrics.hierarchical_precision,
        "hierarchical_recall": metrics.hierarchical_recall,
        "hierarchical_f1": metrics.hierarchical_f1,
        "mistake_severity": asdict(metrics.mistake_severity),
        "confidence_bins": _bins_record(metrics.confidence_bins),
    }


def _bins_record(bins: ConfidenceBins) -> dict[str, list]:
    return {
        "lower": bins.lower.tolist(),
        "upper": bins.upper.tolist(),
        "n": bins.n.tolist(),
        "accuracy": bins.accuracy.tolist(),
        "baseline_accuracy": bins.baseline_accuracy.tolist(),
        "rollup_rate": bins.rollup_rate.tolist(),
        "changed_rate": bins.changed_rate.tolist(),
    }


def _curve_record(curve: RiskCoverage) -> dict[str, object]:
    return {
        "threshold": curve.threshold,
        "n_reaching": curve.n_reaching,
        "aurc": curve.aurc,
        "thresholds": curve.thresholds.tolist(),
        "coverage": curve.coverage.tolist(),
        "risk": curve.risk.tolist(),
        "n_accepted": curve.n_accepted.tolist(),
    }


def _disagreement_record(pair: ModeDisagreement) -> dict[str, object]:
    return {
        "lineage": pair.lineage,
        "distribution": pair.distribution,
        "counterpart_added": pair.counterpart_added,
        "n": pair.n,
        "n_disagree": pair.n_disagree,
        "share_disagree": pair.share_disagree,
        "outcomes": list(OUTCOMES),
        "confusion": pair.confusion.tolist(),
        "lineage_accuracy": pair.lineage_accuracy,
        "distribution_accuracy": pair.distribution_accuracy,
        "distribution_leaves_lineage": pair.distribution_leaves_lineage,
    }


def calibration_record(report: CalibrationReport) -> dict[str, object]:
    """The content of ``calibration.json`` (NaN kept; :func:`jsonable` writes it as null)."""
    return {
        "n_calibration": report.n_calibration,
        "one_per_occurrence": report.one_per_occurrence,
        "n_test": report.n_test,
        "seed": report.seed,
        **threshold_calibration_record(report.calibration),
        "held_out": held_out_record(report.held_out),
    }


def threshold_calibration_record(calibration: ThresholdCalibration) -> dict[str, object]:
    """Mode, delta, the platform config, unreachable ranks and each rank's calibration curve."""
    config = calibration.config()
    return {
        "mode": calibration.mode,
        "delta": calibration.delta,
        "config": None if config is None else config.model_dump(),
        "unreachable": calibration.unreachable,
        "ranks": [_rank_calibration_record(rank) for rank in calibration.ranks],
    }


def _rank_calibration_record(rank: RankCalibration) -> dict[str, object]:
    return {
        "rank": rank.rank,
        "target": rank.target,
        "reached": rank.reached,
        "threshold": rank.threshold,
        "n_reaching": rank.n_reaching,
        "n_accepted": rank.n_accepted,
        "n_errors": rank.n_errors,
        "precision": rank.accepted_precision,
        "precision_bound": rank.precision_bound,
        "curve": {
            "thresholds": rank.thresholds.tolist(),
            "n_accepted": rank.accepted.tolist(),
            "precision": rank.precision.tolist(),
            "bound": rank.bound.tolist(),
        },
    }


def held_out_record(held: HeldOutEvaluation) -> dict[str, object]:
    """:func:`~taxopost.evaluation.calibration.evaluate_thresholds`'s result as written in the report."""
    return {
        "n": held.n,
        "accuracy": held.accuracy,
        "ranks": [
            {
                "rank": rank.rank,
                "threshold": rank.threshold,
                "target": rank.target,
                "n_accepted": rank.n_accepted,
                "coverage": rank.coverage,
                "precision": rank.precision,
                "met": rank.met,
                "n_reaching": rank.n_reaching,
                "curve": {
                    "thresholds": rank.thresholds.tolist(),
                    "precision": rank.curve_precision.tolist(),
                    "n_accepted": rank.curve_accepted.tolist(),
                },
            }
            for rank in held.ranks
        ],
        "not_accepted": asdict(held.not_accepted),
    }


# -- files ---------------------------------------------------------------------------------------


def jsonable(value: object) -> object:
    """``value`` with NaN and infinities as None (JSON null) and numpy scalars as Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json(data: object) -> str:
    return json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n"


@contextlib.contextmanager
def output_dir_kept_on_success(path: Path | str, files: Sequence[str] = ()) -> Iterator[Path]:
    """The output folder, made before a long computation (a folder that cannot be made, or where
    a folder takes the name of one of ``files``, fails first), and removed again if this call
    made it and the computation fails before writing."""
    path = Path(path)
    made = not path.exists()
    prepare_output_dir(path, files)
    try:
        yield path
    except BaseException:
        if made:
            with contextlib.suppress(OSError):  # not empty (something was written): kept
                path.rmdir()
        raise


def prepare_output_dir(path: Path | str, files: Sequence[str] = ()) -> Path:
    """The output folder, made; refused where a folder takes the name of one of ``files``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError("--output-dir", str(path), "exists and is not a folder")
    taken = next((name for name in files if (path / name).is_dir()), None)
    if taken is not None:
        reason = f"holds a folder named {taken!r} where the report writes a file: remove it or give another folder"
        raise InputError("--output-dir", str(path), reason)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError("--output-dir", str(path), f"cannot be created ({exc.strerror or exc})") from None
    return path


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _render_figures(data: Mapping, figures: Mapping[str, tuple[str, Callable]]) -> dict[str, tuple[str, bytes]]:
    """Each figure that applies to this run (not every run has a roll-up or a disagreement), as
    ``{file name: (title, PNG)}``."""
    rendered = {}
    for filename, (title, draw) in figures.items():
        figure = draw(data)
        if figure is not None:
            rendered[filename] = (title, _png(figure))
    return rendered


def _write_report(output_dir: Path | str, files: Mapping[str, bytes | str], names: Sequence[str]) -> dict[str, Path]:
    """Write ``files`` into the folder, all or none, then remove the rest of ``names`` (a figure
    an earlier run drew that does not apply to this one): the folder holds one report, never
    parts of two."""
    out = prepare_output_dir(output_dir, names)
    write_files_atomically({out / name: content for name, content in files.items()}, field="--output-dir")
    for name in names:
        if name not in files:
            (out / name).unlink(missing_ok=True)
    return {name: out / name for name in files}


def _embedded(figures: Mapping[str, tuple[str, bytes]]) -> list[tuple[str, str]]:
    return [(title, base64.b64encode(png).decode("ascii")) for title, png in figures.values()]


def write_evaluation(evaluation: Evaluation, output_dir: Path | str) -> dict[str, Path]:
    """Write ``metrics.json`` (:func:`evaluation_record`), the PNG figures and ``report.html`` into
    ``output_dir``: all are made before any is written, and written all or none.

    Returns
    -------
    dict of file name to path
    """
    data = jsonable(evaluation_record(evaluation))
    figures = _render_figures(data, EVALUATION_FIGURES)
    files = {"metrics.json": _json(data), "report.html": _evaluation_html(data, _embedded(figures))}
    return _write_report(output_dir, {**files, **{name: png for name, (_, png) in figures.items()}}, EVALUATION_FILES)


def write_calibration(report: CalibrationReport, output_dir: Path | str) -> dict[str, Path]:
    """Write ``calibration.json`` (:func:`calibration_record`), ``calibration.png`` and ``report.html``,
    all or none."""
    data = jsonable(calibration_record(report))
    figures = _render_figures(data, CALIBRATION_FIGURES)
    files = {"calibration.json": _json(data), "report.html": _calibration_html(data, _embedded(figures))}
    return _write_report(output_dir, {**files, **{name: png for name, (_, png) in figures.items()}}, CALIBRATION_FILES)


# -- HTML ----------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0 1.6em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0 1.5em; }
.note { color: #555; font-size: 0.9em; }
"""


def _fmt(value: object, kind: str = "ratio") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3f}" if kind == "ratio" else f"{value:g}"
    return html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if isinstance(cell, _Raw) else _fmt(cell)}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _Raw(str):
    """Cell content already escaped."""


def _page(title: str, sections: Sequence[str], figures: Sequence[tuple[str, str]]) -> str:
    images = "".join(
        f'<h2>{html.escape(t)}</h2><img alt="{html.escape(t)}" src="data:image/png;base64,{b64}">' for t, b64 in figures
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections)}{images}</body></html>\n"
    )


def _steps_text(steps: Sequence[Mapping]) -> str:
    if not steps:
        return "baseline (argmax)"
    parts = []
    for step in steps:
        if step["task"] == "rank_rollup":
            thresholds = ", ".join(f"{r}={v:g}" for r, v in step["thresholds"].items())
            parts.append(f"roll-up {step['mode']} ({thresholds})")
        elif step["task"] == "class_masking":
            parts.append(f"mask {Path(step['taxa_list']).name}{'' if step.get('reweight', True) else ' (no reweight)'}")
        elif step["task"] == "occurrence_consensus":
            parts.append(f"consensus {step['method']}")
        else:
            parts.append(step["task"])
    return " → ".join(parts)


def _evaluation_html(data: Mapping, figures: Sequence[tuple[str, str]]) -> str:
    pipelines = data["pipelines"]
    ranks = [r for r in data["ranks"] if any((p["coverage"].get(r) or 0) > 0 for p in pipelines)]
    summary = _table(
        ["pipeline", "steps", "n", "accuracy", "baseline acc.", "exact acc.", "hP", "hR", "hF1"],
        [
            [
                p["name"],
                _steps_text(p["steps"]),
                p["n"],
                p["accuracy"],
                p["baseline_accuracy"],
                p["exact_accuracy"],
                p["hierarchical_precision"],
                p["hierarchical_recall"],
                p["hierarchical_f1"],
            ]
            for p in pipelines
        ],
    )
    coverage = _table(
        ["pipeline", *(f"{r} coverage" for r in ranks), *(f"{r} precision" for r in ranks)],
        [
            [p["name"], *(p["coverage"].get(r) for r in ranks), *(p["precision"].get(r) for r in ranks)]
            for p in pipelines
        ],
    )
    outcome_keys = ("changed", "corrected", "regressed", "generalized", "specialized", "still_wrong")
    outcomes = _table(["pipeline", *outcome_keys], [[p["name"], *(p[k] for k in outcome_keys)] for p in pipelines])
    lca_ranks = [*ranks, "none"]
    severity = _table(
        ["pipeline", "wrong", *(f"LCA {r}" for r in lca_ranks), "mean LCA height"],
        [
            [
                p["name"],
                p["mistake_severity"]["n_wrong"],
                *(p["mistake_severity"]["lca_rank"].get(r, 0) for r in lca_ranks),
                p["mistake_severity"]["mean_lca_height"],
            ]
            for p in pipelines
        ],
    )
    sections = [
        f"<p class='note'>{data['n_rows']:,} rows. A prediction is correct when it is the true taxon or one of "
        "its ancestors. Definitions: docs/evaluation.md.</p>",
        "<h2>Summary</h2>",
        summary,
        "<h2>Coverage and precision by final rank</h2>",
        coverage,
        "<h2>Changes against the baseline</h2>",
        outcomes,
        "<h2>Mistake severity (wrong rows: rank of the lowest common ancestor of prediction and truth)</h2>",
        severity,
    ]
    per_occurrence = [p for p in pipelines if p.get("occurrences")]
    if per_occurrence:
        sections += [
            "<h2>Per occurrence (one prediction each: its row with the highest final score)</h2>",
            _table(
                ["pipeline", "occurrences", "accuracy", *(f"{r} coverage" for r in ranks), "corrected", "regressed"],
                [
                    [
                        p["name"],
                        p["occurrences"]["n"],
                        p["occurrences"]["accuracy"],
                        *(p["occurrences"]["coverage"].get(r) for r in ranks),
                        p["occurrences"]["corrected"],
                        p["occurrences"]["regressed"],
                    ]
                    for p in per_occurrence
                ],
            ),
        ]
    with_consensus = [p for p in pipelines if p.get("consensus")]
    if with_consensus:
        sections += [
            "<h2>Consensus steps (occurrences combined, and passed through as they are)</h2>",
            _table(
                ["pipeline", "step", "min detections", "combined", "rows", "one detection", "too few", "rows kept"],
                [
                    [p["name"], c["step"], c["min_detections"], c["combined"], c["rows_combined"],
                     c["one_detection"], c["too_few"], c["rows_passed_through"]]
                    for p in with_consensus
                    for c in p["consensus"]
                ],
            ),
        ]  # fmt: skip
    rollups = [p for p in pipelines if p.get("risk_coverage")]
    if rollups:
        curve_ranks = [r for r in data["ranks"] if any(r in p["risk_coverage"] for p in rollups)]
        sections += [
            "<h2>Area under the risk-coverage curve (lower is better)</h2>",
            _table(
                ["pipeline", *(f"{r} AURC" for r in curve_ranks), *(f"{r} reaching" for r in curve_ranks)],
                [
                    [
                        p["name"],
                        *((p["risk_coverage"].get(r) or {}).get("aurc") for r in curve_ranks),
                        *((p["risk_coverage"].get(r) or {}).get("n_reaching") for r in curve_ranks),
                    ]
                    for p in rollups
                ],
            ),
        ]
    if data.get("mode_disagreement"):
        sections += [
            "<h2>Lineage versus distribution mode</h2>",
            _table(
                [
                    "lineage",
                    "distribution",
                    "rows differ",
                    "share",
                    "lineage acc. there",
                    "distribution acc. there",
                    "distribution leaves the lineage",
                ],
                [
                    [
                        d["lineage"],
                        d["distribution"],
                        d["n_disagree"],
                        d["share_disagree"],
                        d["lineage_accuracy"],
                        d["distribution_accuracy"],
                        d["distribution_leaves_lineage"],
                    ]
                    for d in data["mode_disagreement"]
                ],
            ),
        ]
    sections += ["<h2>By input confidence</h2>", _bins_table(pipelines)]
    if data.get("warnings"):
        sections.append(
            "<h2>Warnings</h2><ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in data["warnings"]) + "</ul>"
        )
    return _page("taxopost evaluation", sections, figures)


def _bins_table(pipelines: Sequence[Mapping]) -> str:
    bins = pipelines[0]["confidence_bins"]
    header = [
        "confidence",
        "rows",
        "baseline acc.",
        *(f"{p['name']} acc." for p in pipelines),
        *(f"{p['name']} roll-up" for p in pipelines),
    ]
    rows = []
    for i, (lower, upper) in enumerate(zip(bins["lower"], bins["upper"], strict=True)):
        rows.append(
            [
                _Raw(f"[{lower:.1f}, {upper:.1f}{']' if i == len(bins['lower']) - 1 else ')'}"),
                bins["n"][i],
                bins["baseline_accuracy"][i],
                *(p["confidence_bins"]["accuracy"][i] for p in pipelines),
                *(p["confidence_bins"]["rollup_rate"][i] for p in pipelines),
            ]
        )
    return _table(header, rows)


def _calibration_html(data: Mapping, figures: Sequence[tuple[str, str]]) -> str:
    held = {r["rank"]: r for r in data["held_out"]["ranks"]}
    rows = [
        [
            r["rank"],
            r["target"],
            _Raw("unreachable") if not r["reached"] else r["threshold"],
            r["n_reaching"],
            r["n_accepted"],
            r["precision"],
            r["precision_bound"],
            held[r["rank"]]["n_accepted"],
            held[r["rank"]]["coverage"],
            held[r["rank"]]["precision"],
            held[r["rank"]]["met"],
        ]
        for r in data["ranks"]
    ]
    rest = data["held_out"]["not_accepted"]
    config = data["config"]
    sections = [
        f"<p class='note'>{data['mode']} mode; δ = {data['delta']:g}; {data['n_calibration']:,} calibration rows"
        f"{' (one per occurrence)' if data.get('one_per_occurrence') else ''}, "
        f"{data['n_test']:,} held-out rows (seed {data['seed']}). Guarantee, per reached rank: with probability "
        f"at least {1 - data['delta']:.2f} the precision of predictions accepted at that rank is at least its target, "
        "assuming calibration and new rows are exchangeable (docs/evaluation.md).</p>",
        "<h2>Thresholds</h2>",
        _table(
            [
                "rank",
                "target",
                "threshold",
                "cal. reaching",
                "cal. accepted",
                "cal. precision",
                "cal. lower bound",
                "held-out accepted",
                "held-out coverage",
                "held-out precision",
                "target met",
            ],
            rows,
        ),
        f"<p>Held out: accuracy {_fmt(data['held_out']['accuracy'])}; {rest['n']:,} rows accepted at no rank "
        f"({_fmt(rest['coverage'])}) keep the model's prediction (precision {_fmt(rest['precision'])}).</p>",
        "<h2>Config for the platform's rank roll-up task</h2>",
        f"<pre>{html.escape(json.dumps(config, indent=2)) if config else 'none: no rank reaches its target'}</pre>",
    ]
    return _page("taxopost threshold calibration", sections, figures)
