"""PNG plots of the scenarios' results under bench/results/: bar charts of rates and latency distributions."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def save(
    name: str,
    title: str,
    *,
    bars: dict[str, float] | None = None,
    bar_label: str = "",
    latencies_ms: dict[str, list[float]] | None = None,
    latency_label: str = "latency (ms)",
) -> str:
    """One PNG with up to two panels: bars (a value per label) and latency CDFs (one line per series);
    returns its path relative to the repository, or a note when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "not drawn: matplotlib is not installed (pip install -e '.[bench]')"
    panels = [panel for panel in (bars, latencies_ms) if panel]
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    column = 0
    if bars:
        axis = axes[0][column]
        drawn = axis.bar(list(bars), list(bars.values()), color=["#888888", *["#1f6f8b"] * (len(bars) - 1)])
        axis.bar_label(drawn, fmt="%.0f")
        axis.set_ylabel(bar_label)
        axis.tick_params(axis="x", labelrotation=15)
        column += 1
    if latencies_ms:
        axis = axes[0][column]
        for label, values in latencies_ms.items():
            ordered = sorted(values)
            if ordered:
                axis.plot(ordered, [(n + 1) / len(ordered) for n in range(len(ordered))], label=label)
        axis.set_xscale("log")
        axis.set_xlabel(latency_label)
        axis.set_ylabel("share of requests at or below")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return str(path.relative_to(RESULTS.parent.parent))
