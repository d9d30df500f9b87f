"""A grouped bar chart as inline SVG: no script, no CDN, readable without JavaScript."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

BEFORE, AFTER = "#9aa5b1", "#2a7ab0"


def before_after_svg(labels: list[str], before: dict[str, int], after: dict[str, int], *, title: str) -> SafeString:
    """Bars per label: before (grey) and after (blue), with their counts written on top."""
    width, height, left, bottom, top = max(480, 90 * len(labels) + 80), 260, 50, 40, 30
    plot_h = height - bottom - top
    peak = max([1, *before.values(), *after.values()])
    group = (width - left - 20) / max(1, len(labels))
    bar = min(32.0, group / 3)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="rank-chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#666"/>',
    ]
    for i, label in enumerate(labels):
        x0 = left + i * group + (group - 2 * bar) / 2
        for j, (counts, colour, name) in enumerate(((before, BEFORE, "before"), (after, AFTER, "after"))):
            value = counts.get(label, 0)
            h = plot_h * value / peak
            x, y = x0 + j * bar, top + plot_h - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(label)} {name}: {value}</title></rect>"
            )
            parts.append(f'<text x="{x + bar / 2 - 1:.1f}" y="{y - 4:.1f}" text-anchor="middle">{value}</text>')
        parts.append(
            f'<text x="{x0 + bar:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
            f"{escape('Not identifiable' if label == 'unknown' else label)}</text>"
        )
    legend_y = 14
    parts.append(f'<rect x="{left}" y="{legend_y - 10}" width="12" height="12" fill="{BEFORE}"/>')
    parts.append(f'<text x="{left + 16}" y="{legend_y}">before the job (its sources)</text>')
    parts.append(f'<rect x="{left + 220}" y="{legend_y - 10}" width="12" height="12" fill="{AFTER}"/>')
    parts.append(f'<text x="{left + 236}" y="{legend_y}">after (what it wrote)</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text inside was escaped above


__all__ = ["before_after_svg"]
