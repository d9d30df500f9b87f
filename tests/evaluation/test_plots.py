"""The evaluation report's figures: each line drawn once, counts shown, no line over no data, no clipped title."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from taxopost.evaluation import plots
from taxopost.evaluation.evaluate import evaluate_pipelines
from taxopost.evaluation.pipelines import parse_pipelines
from taxopost.evaluation.report import evaluation_record, jsonable

PIPELINES = [
    {"name": "model output", "steps": []},
    {"name": "roll-up (lineage)", "steps": [{"task": "rank_rollup", "mode": "lineage"}]},
    {"name": "roll-up (distribution)", "steps": [{"task": "rank_rollup", "mode": "distribution"}]},
]


@pytest.fixture(scope="module")
def metrics(simulated, synthetic) -> dict:
    scores, truth = simulated
    evaluation = evaluate_pipelines(scores, synthetic, truth, parse_pipelines(PIPELINES, synthetic))
    return jsonable(evaluation_record(evaluation))


def _drawn(figure):
    FigureCanvasAgg(figure).draw()
    return figure


def test_the_model_output_is_one_line_not_two(metrics):
    top = _drawn(plots.confidence_figure(metrics)).axes[0]
    labels = [line.get_label() for line in top.lines]
    assert labels == ["model output (argmax)", "roll-up (lineage)", "roll-up (distribution)"]
    curves = [tuple(np.nan_to_num(line.get_ydata(), nan=-1.0)) for line in top.lines]
    assert len(set(curves)) == len(curves)  # no two lines draw the same values


def test_each_confidence_bin_shows_its_n(metrics):
    bottom = _drawn(plots.confidence_figure(metrics)).axes[2]
    counts = metrics["pipelines"][0]["confidence_bins"]["n"]
    assert [text.get_text() for text in bottom.texts] == [f"{n:,}" for n in counts]


@pytest.mark.parametrize(("counts", "scale"), [([0, 3, 40, 900, 5000], "log"), ([10, 40, 90, 300, 500], "linear")])
def test_counts_spanning_orders_of_magnitude_get_a_log_axis(metrics, counts, scale):
    bins = {
        "lower": [0.0, 0.2, 0.4, 0.6, 0.8], "upper": [0.2, 0.4, 0.6, 0.8, 1.0], "n": counts,
        "accuracy": [None, 0.5, 0.6, 0.7, 0.9], "baseline_accuracy": [None, 0.4, 0.5, 0.7, 0.9],
        "rollup_rate": [None, 0.9, 0.5, 0.2, 0.0],
    }  # fmt: skip
    data = {"pipelines": [{"name": "model output", "steps": [], "confidence_bins": bins}]}
    assert _drawn(plots.confidence_figure(data)).axes[2].get_yscale() == scale


def test_no_risk_coverage_line_crosses_a_range_without_data(metrics):
    """Between two swept thresholds whose coverages lie far apart, the curve is broken, not joined."""
    curve = {
        "thresholds": [1.0, 0.99, 0.98, 0.9, 0.8], "coverage": [0.0, 0.006, 0.49, 0.52, 0.6],
        "risk": [0.0, 0.0, 0.21, 0.2, 0.22], "n_accepted": [0, 2, 160, 170, 195], "threshold": 0.9, "aurc": 0.1,
    }  # fmt: skip
    data = {"ranks": ["family"], "pipelines": [{"name": "roll-up", "risk_coverage": {"family": curve}}]}
    ax = _drawn(plots.risk_coverage_figure(data)).axes[0]
    for line in ax.lines:
        x = np.asarray(line.get_xdata(), dtype=float)
        segments = np.split(x, np.flatnonzero(np.isnan(x)))
        for segment in segments:
            segment = segment[np.isfinite(segment)]
            if segment.size > 1 and line.get_linestyle() not in ("None", ""):
                assert np.abs(np.diff(segment)).max() <= plots.MAX_COVERAGE_GAP
    drawn = np.concatenate([np.asarray(line.get_xdata(), dtype=float) for line in ax.lines])
    assert 0.0 not in drawn  # coverage 0: no row accepted, no error rate
    assert 0.006 in drawn  # a point alone between gaps is still shown, as a dot


def test_real_curves_are_broken_only_at_gaps(metrics):
    ax = _drawn(plots.risk_coverage_figure(metrics)).axes[0]
    solid = [line for line in ax.lines if line.get_linestyle() not in ("None", "")]
    assert len(solid) == 2 and all(np.isfinite(np.asarray(line.get_xdata(), dtype=float)).sum() > 5 for line in solid)


@pytest.mark.parametrize("n_pairs", [1, 2])
def test_no_title_is_clipped(metrics, n_pairs):
    pair = metrics["mode_disagreement"][0]
    narrow = {**metrics, "mode_disagreement": [pair] * n_pairs, "ranks": metrics["ranks"][:1]}
    figures = [
        plots.risk_coverage_figure(narrow),
        plots.coverage_figure(metrics),
        plots.confidence_figure(metrics),
        plots.disagreement_figure(narrow),
    ]
    for figure in figures:
        _drawn(figure)
        renderer = figure.canvas.get_renderer()
        titles = [figure._suptitle] if figure._suptitle is not None else []
        titles += [ax.title for ax in figure.axes if ax.get_title()]
        assert titles
        for title in titles:
            box = title.get_window_extent(renderer)
            assert box.x0 >= 0 and box.x1 <= figure.bbox.x1 + 0.5, (title.get_text(), box, figure.bbox)


@pytest.mark.parametrize("name", ["x $^$", "price $5 and $10"])
def test_a_dollar_in_a_pipeline_name_is_drawn_as_typed(metrics, name):
    """matplotlib reads text between two ``$`` as math: ``x $^$`` failed to draw (the evaluation
    stopped with a traceback), ``price $5 and $10`` came out as a formula."""
    pipelines = [{**p, "name": f"{name} {i}"} for i, p in enumerate(metrics["pipelines"])]
    pairs = [{**pair, "lineage": f"{name} 1", "distribution": f"{name} 2"} for pair in metrics["mode_disagreement"]]
    data = {**metrics, "pipelines": pipelines, "mode_disagreement": pairs}
    escaped = name.replace("$", r"\$")
    figures = [plots.risk_coverage_figure(data), plots.coverage_figure(data), plots.confidence_figure(data)]
    texts = []
    for figure in [*figures, plots.disagreement_figure(data)]:
        for ax in _drawn(figure).axes:
            texts += [ax.get_xlabel(), ax.get_ylabel(), *(t.get_text() for t in ax.get_yticklabels())]
            if ax.get_legend() is not None:
                texts += [t.get_text() for t in ax.get_legend().get_texts()]
    shown = [text for text in texts if "$" in text and "mathdefault" not in text]  # not a log axis' own math
    assert shown and all(escaped in text for text in shown)
    assert f"{escaped} 1 (AURC" in " ".join(shown) and f"lineage mode: {escaped} 1" in shown
