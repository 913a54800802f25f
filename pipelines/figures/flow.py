"""Optical-flow pictures: flow fields in the Middlebury colour coding, beside the frames.

The Middlebury coding (Baker et al., "A database and evaluation methodology for optical
flow", 2011) shows a flow vector's direction as a hue on a colour wheel of 55 steps
(red -> yellow -> green -> cyan -> blue -> magenta -> red, with 15, 6, 4, 11, 13 and 6 steps)
and its length as saturation: white is no motion, full colour is the largest motion shown.
"""

from __future__ import annotations

import numpy as np

from pipelines.figures.base import png_bytes, pyplot

# Steps between the wheel's six anchor colours, in wheel order.
WHEEL_STEPS = (15, 6, 4, 11, 13, 6)  # RY, YG, GC, CB, BM, MR


def color_wheel() -> np.ndarray:
    """(55, 3) RGB colours in [0, 255] around the wheel."""
    anchors = np.array(
        [[255, 0, 0], [255, 255, 0], [0, 255, 0], [0, 255, 255], [0, 0, 255], [255, 0, 255]],
        dtype=np.float64,
    )
    colours = []
    for i, steps in enumerate(WHEEL_STEPS):
        start, end = anchors[i], anchors[(i + 1) % len(anchors)]
        for k in range(steps):
            colours.append(start + (end - start) * k / steps)
    return np.floor(np.array(colours))


def flow_to_color(flow: np.ndarray, max_radius: float | None = None) -> np.ndarray:
    """(H, W, 2) flow (u right, v down) -> (H, W, 3) uint8 Middlebury colours.

    Vectors are scaled by ``max_radius`` (default: the longest one), so colours compare only
    within one call; pass the same radius to compare several fields.
    """
    u, v = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
    radius = np.sqrt(u**2 + v**2)
    scale = max_radius if max_radius is not None else float(radius.max())
    if scale > 0:
        u, v, radius = u / scale, v / scale, radius / scale
    wheel = color_wheel()
    n = len(wheel)
    angle = np.arctan2(-v, -u) / np.pi  # in (-1, 1]
    position = (angle + 1) / 2 * (n - 1)  # in [0, n - 1]
    k0 = np.floor(position).astype(int)
    k1 = (k0 + 1) % n
    frac = (position - k0)[..., None]
    colour = ((1 - frac) * wheel[k0] + frac * wheel[k1]) / 255.0  # (H, W, 3)
    inside = (radius <= 1)[..., None]
    saturated = 1 - radius[..., None] * (1 - colour)  # white at 0 motion
    colour = np.where(inside, saturated, colour * 0.75)  # beyond the scale: darker
    return np.clip(np.floor(255 * colour), 0, 255).astype(np.uint8)


def flow_panels_png(
    frames: np.ndarray,
    truth: np.ndarray,
    predicted: np.ndarray,
    valid: np.ndarray,
    epe: list[float],
) -> bytes:
    """One row per example: frame 1, frame 2, ground-truth flow, predicted flow.

    frames (N, 2, H, W, 3) uint8, truth and predicted (N, H, W, 2), valid (N, H, W). Both
    flows of a row share the ground truth's colour scale; pixels without ground truth are
    black in the ground-truth panel.
    """
    plt = pyplot()
    n = len(frames)
    fig, axes = plt.subplots(n, 4, figsize=(10, 2.2 * n), dpi=80, squeeze=False)
    for row in range(n):
        mask = valid[row].astype(bool)
        radius = float(np.sqrt((truth[row][mask] ** 2).sum(-1)).max()) if mask.any() else 1.0
        gt = flow_to_color(truth[row], radius)
        gt[~mask] = 0
        panels = [
            (frames[row, 0], "frame 1"),
            (frames[row, 1], "frame 2"),
            (gt, "ground truth"),
            (flow_to_color(predicted[row], radius), f"predicted (EPE {epe[row]:.2f} px)"),
        ]
        for ax, (image, title) in zip(axes[row], panels, strict=True):
            ax.imshow(image)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    return png_bytes(fig)
