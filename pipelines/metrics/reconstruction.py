"""Reconstruction quality: peak signal-to-noise ratio.

``PSNR = 10 log10(R^2 / MSE)`` with R the data range: 1 for pixels in [0, 1], 2 for audio
in [-1, 1]. A split's PSNR is the mean of its clips' PSNRs (each clip's MSE over all of its
pixels or samples), as video and audio reconstruction papers report it.
"""

from __future__ import annotations

import numpy as np

PIXEL_RANGE = 1.0
AUDIO_RANGE = 2.0


def psnr(pred: np.ndarray, target: np.ndarray, data_range: float) -> np.ndarray:
    """(N, ...) reconstructions and targets -> (N,) PSNR per example, in dB (inf if exact)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ")
    err = (pred.astype(np.float64) - target.astype(np.float64)) ** 2
    mse = err.reshape(len(err), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / mse)
