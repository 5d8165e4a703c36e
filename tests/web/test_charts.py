"""The server-drawn SVG charts: every outside text escaped, values placed within the frame."""

from __future__ import annotations

import re

from dcp.web.charts import HEIGHT, Series, bar_chart, line_chart


def test_labels_are_escaped() -> None:
    svg = line_chart([Series("<b>", [1, 2])], x_labels=["<i>", "x"], title="<script>")
    assert "<script>" not in svg and "<b>" not in svg and "<i>" not in svg
    assert "&lt;script&gt;" in svg


def test_points_stay_inside_the_chart_and_gaps_are_skipped() -> None:
    svg = line_chart(
        [Series("util", [0, 50, None, 500])], x_labels=["a", "b", "c", "d"], title="t", y_max=100
    )
    points = re.search(r'points="([^"]+)"', svg)
    assert points
    ys = [float(pair.split(",")[1]) for pair in points.group(1).split()]
    assert len(ys) == 3 and all(0 <= y <= HEIGHT for y in ys)
    assert ys[0] > ys[1] > ys[2]  # higher values are drawn higher up


def test_bars_carry_their_values_in_the_given_format() -> None:
    svg = bar_chart(["RTX 4090", "A100"], [3, 1], title="GPUs", y_format=lambda v: f"{v:.0f} GPUs")
    assert svg.count("<rect") == 2 and "RTX 4090: 3 GPUs" in svg
