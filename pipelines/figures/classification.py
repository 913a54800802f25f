"""Classification pictures: confusion matrices, prediction grids, video frame strips."""

from __future__ import annotations

import numpy as np

from pipelines.figures.base import png_bytes, pyplot


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


def frame_strips_png(
    clips: np.ndarray, labels: np.ndarray, preds: np.ndarray, classes: list[str], frames: int = 6
) -> bytes:
    """One row per clip: ``frames`` evenly spaced frames of (N, T, H, W, 3) uint8 clips,
    titled with the predicted and true labels (wrong ones in red)."""
    plt = pyplot()
    n = len(clips)
    steps = np.linspace(0, clips.shape[1] - 1, min(frames, clips.shape[1])).round().astype(int)
    fig, axes = plt.subplots(
        n, len(steps), figsize=(1.6 * len(steps), 1.8 * n), dpi=80, squeeze=False
    )
    for row, (clip, label, pred) in enumerate(zip(clips, labels, preds, strict=True)):
        for col, t in enumerate(steps):
            ax = axes[row, col]
            ax.imshow(clip[t])
            ax.axis("off")
        ok = int(label) == int(pred)
        axes[row, 0].set_title(
            f"{classes[int(pred)]} (true {classes[int(label)]})",
            fontsize=7,
            color="black" if ok else "red",
            loc="left",
        )
    return png_bytes(fig)
