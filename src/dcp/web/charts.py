"""Charts drawn on the server as SVG: no script, no external library, and nothing for the CSP to allow.

Time runs left to right in both languages (as on any clock or chart people read); the labels are the
caller's, already translated and formatted for the page's locale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 12, 28
PALETTE = ("#0b6e4f", "#c2410c", "#1d4ed8", "#7c3aed")


def _plain(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Series:
    """One line: its label (for the legend) and its values, one per x position (None: no sample)."""

    label: str
    values: Sequence[float | None]


def line_chart(
    series: Sequence[Series],
    *,
    x_labels: Sequence[str],
    title: str,
    y_max: float | None = None,
    y_format: Callable[[float], str] = _plain,
) -> Markup:
    """Lines over shared x positions; ``x_labels`` are shown at the start, middle and end."""
    known = [v for s in series for v in s.values if v is not None]
    top = y_max if y_max is not None else max([*known, 1.0])
    count = max((len(s.values) for s in series), default=0)
    parts = [_axes(top, y_format)]
    for index, one in enumerate(series):
        points = [f"{_x(i, count):.1f},{_y(v, top):.1f}" for i, v in enumerate(one.values) if v is not None]
        if points:
            color = PALETTE[index % len(PALETTE)]
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(points)}"/>'
            )
    parts.append(_x_labels(x_labels, count))
    parts.append(_legend(series))
    return _svg(title, parts)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    y_format: Callable[[float], str] = _plain,
) -> Markup:
    """One bar per label, labels under the bars."""
    top = max([*values, 1.0])
    count = len(values)
    slot = (WIDTH - _LEFT - _RIGHT) / max(count, 1)
    parts = [_axes(top, y_format)]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = _LEFT + i * slot + slot * 0.15
        y = _y(value, top)
        height = HEIGHT - _BOTTOM - y
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}" '
            f'fill="{PALETTE[0]}">'
            f"<title>{escape(label)}: {escape(y_format(value))}</title></rect>"
        )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11">'
            f"{escape(label)}</text>"
        )
    return _svg(title, parts)


def _svg(title: str, parts: list[str]) -> Markup:
    body = "".join(parts)
    # Safe: every text that came from outside this module went through escape() above.
    return Markup(  # noqa: S704
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" direction="ltr" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="DCP Sans, sans-serif">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _x(index: int, count: int) -> float:
    span = WIDTH - _LEFT - _RIGHT
    return _LEFT + (span * index / (count - 1) if count > 1 else span / 2)


def _y(value: float, top: float) -> float:
    span = HEIGHT - _TOP - _BOTTOM
    return HEIGHT - _BOTTOM - span * min(max(value, 0.0), top) / top


def _axes(top: float, y_format: Callable[[float], str]) -> str:
    lines = []
    for fraction in (0.0, 0.5, 1.0):
        y = _y(top * fraction, top)
        lines.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d9dee3"/>')
        lines.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{escape(y_format(top * fraction))}</text>"
        )
    return "".join(lines)


def _x_labels(labels: Sequence[str], count: int) -> str:
    if not labels or count == 0:
        return ""
    picks = sorted({0, (len(labels) - 1) // 2, len(labels) - 1})
    anchors = {picks[0]: "start", picks[-1]: "end"}
    return "".join(
        f'<text x="{_x(i, count):.1f}" y="{HEIGHT - 8}" text-anchor="{anchors.get(i, "middle")}" '
        f'font-size="11">{escape(labels[i])}</text>'
        for i in picks
    )


def _legend(series: Sequence[Series]) -> str:
    if len(series) < 2:
        return ""
    items = []
    for index, one in enumerate(series):
        x = _LEFT + 8 + index * 150
        color = PALETTE[index % len(PALETTE)]
        items.append(f'<rect x="{x}" y="{_TOP}" width="10" height="10" fill="{color}"/>')
        items.append(f'<text x="{x + 14}" y="{_TOP + 9}" font-size="11">{escape(one.label)}</text>')
    return "".join(items)
