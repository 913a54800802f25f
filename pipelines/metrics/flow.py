"""Optical-flow metrics as KITTI 2015 and the flow literature define them.

For each valid pixel, the end-point error is ``|flow_pred - flow_gt|_2`` in pixels. Over a
split, pixels are pooled (every valid pixel of every frame weighs the same, as KITTI's and
Sintel's benchmarks compute EPE):

- ``epe``: mean end-point error;
- ``1px``, ``3px``, ``5px``: fraction of valid pixels whose error is below 1, 3, 5 pixels;
- ``fl_all``: KITTI 2015's outlier rate: fraction of valid pixels whose error exceeds both
  3 pixels and 5 % of the ground-truth flow's magnitude.

``flow_sums`` reduces one sample to counts that add up across samples and workers;
``flow_metrics`` turns their sum into the metrics.
"""

from __future__ import annotations

import numpy as np

SUMS = ("valid", "epe_sum", "under_1px", "under_3px", "under_5px", "outliers")


def flow_sums(pred: np.ndarray, target: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(..., H, W, 2) predicted and true flow, (..., H, W) valid mask -> (len(SUMS),) sums."""
    if pred.shape != target.shape or pred.shape[:-1] != valid.shape:
        raise ValueError(
            f"pred {pred.shape}, target {target.shape} and valid {valid.shape} do not match"
        )
    mask = valid.astype(bool)
    err = np.sqrt(((pred.astype(np.float64) - target) ** 2).sum(-1))[mask]  # (n,)
    magnitude = np.sqrt((target.astype(np.float64) ** 2).sum(-1))[mask]  # (n,)
    return np.array(
        [
            mask.sum(),
            err.sum(),
            (err < 1).sum(),
            (err < 3).sum(),
            (err < 5).sum(),
            ((err > 3) & (err > 0.05 * magnitude)).sum(),
        ],
        dtype=np.float64,
    )


def flow_metrics(sums: np.ndarray) -> dict[str, float]:
    """Summed ``flow_sums`` -> {"epe", "1px", "3px", "5px", "fl_all"}."""
    valid, epe_sum, under1, under3, under5, outliers = (float(v) for v in sums)
    if valid == 0:
        raise ValueError("no valid ground-truth pixel: the flow metrics are undefined")
    return {
        "epe": epe_sum / valid,
        "1px": under1 / valid,
        "3px": under3 / valid,
        "5px": under5 / valid,
        "fl_all": outliers / valid,
    }
