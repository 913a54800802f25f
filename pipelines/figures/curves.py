"""Training curves."""

from __future__ import annotations

from pipelines.figures.base import png_bytes, pyplot


def line_plot_png(
    xs: list[float], series: dict[str, list[float]], xlabel: str, title: str
) -> bytes:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for label, ys in series.items():
        ax.plot(xs[: len(ys)], ys, label=label)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return png_bytes(fig)
