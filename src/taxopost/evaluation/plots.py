"""Figures of an evaluation or a calibration, drawn from their records (``metrics.json``, ``calibration.json``).

Figures are built with :class:`matplotlib.figure.Figure` directly (the Agg renderer, no pyplot
state), so they work on servers and in threads. Each function returns a Figure, or None when
the metrics hold nothing to draw.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

#: Line styles cycled per pipeline, so that curves drawn on top of each other stay visible.
_STYLES = ("-", "--", "-.", ":")
#: A risk-coverage curve is broken where coverage jumps by more than this between two swept
#: thresholds: no threshold of the grid accepts a share in between, so a line there would be drawn
#: over no data (many rows share one aggregate, e.g. family scores of exactly 1).
MAX_COVERAGE_GAP = 0.1
#: Row counts whose largest and smallest non-zero bins differ by this factor get a log axis.
LOG_SPAN = 100
#: Characters of a title per inch of the width it has (DejaVu Sans at 12 pt averages ~6.5 pt).
_CHARS_PER_INCH = 10.5


def _plain(text: str) -> str:
    """``text`` drawn as typed: matplotlib reads a pair of ``$`` as math (a pipeline named
    ``x $^$`` fails to draw, ``price $5 and $10`` comes out in italics), an escaped one as ``$``."""
    return text.replace("$", r"\$")


def _wrapped(text: str, width_inches: float, *, fontsize: float = 12.0) -> str:
    """``text`` broken into lines that fit ``width_inches`` at ``fontsize``, so no title is clipped."""
    return textwrap.fill(text, max(12, int(width_inches * _CHARS_PER_INCH * 12.0 / fontsize)))


def _title(ax, text: str, *, columns: int = 1, fontsize: float = 12.0) -> None:
    width = ax.figure.get_figwidth() / columns
    ax.set_title(_plain(_wrapped(text, width * 0.95, fontsize=fontsize)), fontsize=fontsize)


def _suptitle(fig: Figure, text: str) -> None:
    fig.suptitle(_plain(_wrapped(text, fig.get_figwidth() * 0.95)))


def _broken_at_gaps(x: np.ndarray, y: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """The points with finite values, a NaN inserted wherever ``x`` jumps by more than ``gap``."""
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 2:
        return x, y
    cuts = np.flatnonzero(np.abs(np.diff(x)) > gap) + 1
    return np.insert(x, cuts, np.nan), np.insert(y, cuts, np.nan)


def _num(values: Sequence[object]) -> np.ndarray:
    """A float array with None (JSON null) as NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _rank_colors(ranks: Sequence[str]) -> dict[str, object]:
    cmap = colormaps["viridis"]
    n = max(len(ranks) - 1, 1)
    return {rank: cmap(0.15 + 0.75 * i / n) for i, rank in enumerate(ranks)}


def risk_coverage_figure(metrics: Mapping[str, object]) -> Figure | None:
    """One panel per rank: risk (error rate of accepted rows) over coverage, one curve per roll-up pipeline."""
    pipelines = [p for p in metrics["pipelines"] if p.get("risk_coverage")]
    if not pipelines:
        return None
    ranks = [r for r in metrics["ranks"] if any(r in p["risk_coverage"] for p in pipelines)]
    fig = Figure(figsize=(5.0 * len(ranks), 4.3), layout="constrained")
    axes = fig.subplots(1, len(ranks), squeeze=False)[0]
    for ax, rank in zip(axes, ranks, strict=True):
        for i, p in enumerate(pipelines):
            curve = p["risk_coverage"].get(rank)
            if curve is None:
                continue
            coverage, risk = _num(curve["coverage"]), _num(curve["risk"])
            risk[_num(curve["n_accepted"]) == 0] = np.nan  # no row accepted: no error rate to draw
            aurc = curve["aurc"]
            label = _plain(f"{p['name']} (AURC {aurc:.3f})" if aurc is not None else p["name"])
            x, y = _broken_at_gaps(coverage, risk, MAX_COVERAGE_GAP)
            (line,) = ax.plot(x, y, label=label, linewidth=1.6, linestyle=_STYLES[i % len(_STYLES)])
            alone = np.isfinite(y) & ~np.isfinite(np.r_[np.nan, y[:-1]]) & ~np.isfinite(np.r_[y[1:], np.nan])
            ax.plot(x[alone], y[alone], ".", color=line.get_color())  # a point between two gaps has no line
            thresholds = np.asarray(curve["thresholds"])
            at = int(np.argmin(np.abs(thresholds - curve["threshold"])))
            ax.plot(coverage[at], risk[at], "o", color=line.get_color(), markersize=6)
        _title(ax, f"{rank}: rows reaching this rank", columns=len(ranks))
        ax.set_xlabel("coverage (share of reaching rows accepted)")
        ax.set_ylabel("risk (error rate of accepted rows)")
        ax.set_xlim(0, 1.0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="pipeline (dot: its threshold)", title_fontsize=8)
    _suptitle(fig, "Risk-coverage by rank (threshold swept; finer ranks at their thresholds; no line across gaps)")
    return fig


def coverage_figure(metrics: Mapping[str, object]) -> Figure:
    """Stacked bars per pipeline: the share of final predictions at each rank, with accuracy."""
    pipelines = metrics["pipelines"]
    ranks = [r for r in metrics["ranks"] if any(p["coverage"].get(r, 0) > 0 for p in pipelines)]
    colors = _rank_colors(ranks)
    fig = Figure(figsize=(9.0, 1.2 + 0.55 * len(pipelines)), layout="constrained")
    ax = fig.subplots()
    names = [_plain(p["name"]) for p in pipelines]
    y = np.arange(len(pipelines))[::-1]
    left = np.zeros(len(pipelines))
    for rank in ranks:
        shares = np.array([p["coverage"].get(rank, 0.0) for p in pipelines])
        ax.barh(y, shares, left=left, color=colors[rank], label=_plain(rank), edgecolor="white", height=0.6)
        for yi, share, start in zip(y, shares, left, strict=True):
            if share >= 0.06:
                ax.text(start + share / 2, yi, f"{share:.0%}", ha="center", va="center", fontsize=8, color="white")
        left += shares
    for yi, p in zip(y, pipelines, strict=True):
        ax.text(1.01, yi, f"acc {p['accuracy']:.3f}", va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("share of rows whose final prediction is at each rank")
    _title(ax, "Coverage by final rank")
    ax.legend(title="final rank", fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def confidence_figure(metrics: Mapping[str, object]) -> Figure:
    """Accuracy and roll-up rate over bins of the model's maximum probability."""
    pipelines = metrics["pipelines"]
    bins = pipelines[0]["confidence_bins"]
    centers = (np.asarray(bins["lower"]) + np.asarray(bins["upper"])) / 2
    width = float(np.asarray(bins["upper"])[0] - np.asarray(bins["lower"])[0])
    fig = Figure(figsize=(9.0, 7.0), layout="constrained")
    top, middle, bottom = fig.subplots(3, 1, sharex=True, height_ratios=(3, 2, 1.2))
    # The model's own output is the baseline: drawn once, not again as a pipeline with no step.
    top.plot(centers, _num(bins["baseline_accuracy"]), "k--", marker="s", markersize=3, label="model output (argmax)")
    middle.plot(centers, np.where(np.asarray(bins["n"]) > 0, 0.0, np.nan), "k--", marker="s", markersize=3)
    for i, p in enumerate(p for p in pipelines if p.get("steps")):
        b, style = p["confidence_bins"], _STYLES[i % len(_STYLES)]
        label = _plain(p["name"])
        top.plot(centers, _num(b["accuracy"]), marker="o", markersize=3, linestyle=style, label=label)
        middle.plot(centers, _num(b["rollup_rate"]), marker="o", markersize=3, linestyle=style, label=label)
    top.set_ylabel("accuracy (true taxon or ancestor)")
    top.set_ylim(0, 1.02)
    _title(top, "Accuracy and roll-up rate by input confidence")
    top.legend(fontsize=8)
    middle.set_ylabel("roll-up rate (final coarser)")
    middle.set_ylim(0, 1.02)
    counts = np.asarray(bins["n"], dtype=np.int64)
    bottom.bar(centers, counts, width=width * 0.9, color="0.6")
    for x, n in zip(centers, counts, strict=True):  # n of each bin: how much each point above stands on
        bottom.annotate(f"{n:,}", (x, max(n, 1)), ha="center", va="bottom", fontsize=7, xytext=(0, 1),
                        textcoords="offset points")  # fmt: skip
    positive = counts[counts > 0]
    if positive.size and positive.max() >= LOG_SPAN * positive.min():
        bottom.set_yscale("log")
        bottom.set_ylim(0.8, positive.max() * 4)
        bottom.set_ylabel("rows (log)")
    else:
        bottom.set_ylim(0, max(int(counts.max()), 1) * 1.25)
        bottom.set_ylabel("rows")
    bottom.set_xlabel("input confidence: the model's maximum probability (bin centre)")
    for ax in (top, middle, bottom):
        ax.grid(alpha=0.3)
    return fig


def disagreement_figure(metrics: Mapping[str, object]) -> Figure | None:
    """Confusion of outcomes (exact / correct but coarser / wrong) where lineage and distribution differ."""
    pairs = metrics.get("mode_disagreement") or []
    if not pairs:
        return None
    fig = Figure(figsize=(max(6.0, 4.8 * len(pairs)), 4.6), layout="constrained")
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    for ax, pair in zip(axes, pairs, strict=True):
        confusion = np.asarray(pair["confusion"], dtype=np.int64)
        ax.imshow(confusion, cmap="Blues")
        labels = pair["outcomes"]
        ax.set_xticks(range(len(labels)), labels, rotation=20)
        ax.set_yticks(range(len(labels)), labels)
        peak = confusion.max() if confusion.size else 0
        for (i, j), count in np.ndenumerate(confusion):
            ax.text(j, i, f"{count:,}", ha="center", va="center", color="white" if count > peak / 2 else "black")
        ax.set_xlabel(_plain(f"distribution mode: {pair['distribution']}"))
        ax.set_ylabel(_plain(f"lineage mode: {pair['lineage']}"))
        share = pair["share_disagree"]
        text = f"{pair['n_disagree']:,} rows differ ({share:.1%})" if share is not None else "no rows"
        _title(ax, text, columns=len(pairs), fontsize=10)
    _suptitle(fig, "Lineage vs distribution mode: outcomes on the rows where they differ")
    return fig


def calibration_figure(report: Mapping[str, object]) -> Figure:
    """Per rank: precision over coverage on the calibration split, its lower bound, and the held-out split."""
    ranks = report["ranks"]
    held = {r["rank"]: r for r in report["held_out"]["ranks"]}
    columns = min(len(ranks), 3)
    rows = math.ceil(len(ranks) / columns)
    fig = Figure(figsize=(5.0 * columns, 4.2 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, rank in zip(axes, ranks, strict=False):
        curve, held_rank = rank["curve"], held[rank["rank"]]
        coverage = _num(curve["n_accepted"]) / max(rank["n_reaching"], 1)
        held_coverage = _num(held_rank["curve"]["n_accepted"]) / max(held_rank["n_reaching"], 1)
        ax.plot(coverage, _num(curve["precision"]), label="calibration split")
        ax.plot(coverage, _num(curve["bound"]), label=f"its lower bound (1-δ = {1 - report['delta']:.2f})")
        ax.plot(held_coverage, _num(held_rank["curve"]["precision"]), label="held-out split", alpha=0.8)
        ax.axhline(rank["target"], color="k", linestyle=":", label=f"target {rank['target']:g}")
        if rank["threshold"] is not None:
            at = int(np.argmin(np.abs(np.asarray(curve["thresholds"]) - rank["threshold"])))
            ax.plot(
                coverage[at], curve["bound"][at], "o", color="tab:red", label=f"chosen threshold {rank['threshold']:g}"
            )
            title = f"{rank['rank']}: threshold {rank['threshold']:g}"
        else:
            title = f"{rank['rank']}: target unreachable ({rank['n_reaching']:,} rows reach it)"
        _title(ax, title, columns=columns)
        ax.set_xlabel(_wrapped("coverage (share of rows reaching the rank that are accepted)", 5.0 * 0.95, fontsize=10))
        ax.set_ylabel("precision of accepted rows")
        ax.set_xlim(0, 1)
        shown = np.concatenate([_num(curve["precision"]), _num(curve["bound"]), _num(held_rank["curve"]["precision"])])
        lows = [v for v in shown if np.isfinite(v)]
        ax.set_ylim(max(0.0, min([*lows, rank["target"]]) - 0.05), 1.005)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    for ax in axes[len(ranks) :]:
        ax.set_visible(False)
    _suptitle(fig, f"Threshold calibration ({report['mode']} mode): thresholds swept from 1 down")
    return fig
