"""Pictures logged as MLflow artefacts: training curves, confusion matrices, predictions."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (workers have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig: Any) -> bytes:
    """Lay out ``fig``, render it as PNG bytes and close it."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    pyplot().close(fig)
    return buf.getvalue()


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


def confusion_png(confusion: np.ndarray, classes: list[str], title: str) -> bytes:
    plt = pyplot()
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * n, 1.0 + 0.6 * n), dpi=100)
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    if n <= 30:
        dark = confusion.max() / 2
        for i in range(n):
            for j in range(n):
                value = int(confusion[i, j])
                color = "white" if value > dark else "black"
                ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color=color)
    return png_bytes(fig)


def predictions_png(
    images: np.ndarray, labels: np.ndarray, preds: np.ndarray, classes: list[str]
) -> bytes:
    """A grid of images titled 'pred / true', wrong predictions in red."""
    plt = pyplot()
    n = len(images)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), dpi=80, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label, pred in zip(axes.flat, images, labels, preds, strict=False):
        ax.imshow(image)
        ok = int(label) == int(pred)
        ax.set_title(
            f"{classes[int(pred)]}\n(true {classes[int(label)]})",
            fontsize=7,
            color="black" if ok else "red",
        )
    return png_bytes(fig)
