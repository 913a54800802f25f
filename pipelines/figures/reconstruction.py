"""Autoencoder pictures: original and reconstructed video frames side by side."""

from __future__ import annotations

import numpy as np

from pipelines.figures.base import png_bytes, pyplot


def frames_side_by_side_png(
    original: np.ndarray, reconstructed: np.ndarray, psnr: list[float], frames: int = 4
) -> bytes:
    """Two rows per clip: ``frames`` evenly spaced original frames above their
    reconstructions. original and reconstructed: (N, T, H, W, 3), uint8 or floats in [0, 1]."""
    plt = pyplot()
    n = len(original)
    steps = np.linspace(0, original.shape[1] - 1, min(frames, original.shape[1]))
    steps = steps.round().astype(int)
    fig, axes = plt.subplots(
        2 * n, len(steps), figsize=(1.8 * len(steps), 3.6 * n), dpi=80, squeeze=False
    )
    for clip in range(n):
        for col, t in enumerate(steps):
            for r, (video, name) in enumerate(((original, "original"), (reconstructed, "decoded"))):
                ax = axes[2 * clip + r, col]
                image = video[clip, t]
                ax.imshow(image if image.dtype == np.uint8 else np.clip(image, 0, 1))
                ax.axis("off")
                if col == 0:
                    label = name if r == 0 else f"{name} ({psnr[clip]:.1f} dB)"
                    ax.set_title(label, fontsize=7, loc="left")
    return png_bytes(fig)
