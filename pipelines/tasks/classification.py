"""What the single-label classifiers (images, video) share: loss, records, metrics, pictures.

Loss: cross-entropy with ``loss.label_smoothing``. Records per row: the label, the five best
classes and the (unsmoothed) cross-entropy; metrics: ``val_top1``, ``val_top5`` (equal to 1
with five classes or fewer), ``val_loss``; pictures: the confusion matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from perceiver.config.base import StrictModel
from pipelines.metrics import classification as cls_metrics
from pipelines.tasks.base import Records, Task


class ClassificationLoss(StrictModel):
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=1.0, description="cross-entropy label smoothing (the paper: 0.1)"
    )


class ClassificationTask(Task):
    """A task whose model maps a batch to (B, num_classes) logits of one label per row."""

    metric: ClassVar[str] = "val_top1"
    higher_is_better: ClassVar[bool] = True
    label_column: ClassVar[str] = "label"

    def check_shard_shapes(self, manifest: Any, shards: str) -> None:
        self.check_classes(manifest, shards)

    def loss(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logits = model(self.model_inputs(batch)).float()  # (B, K)
        labels = batch[self.label_column].long()  # (B,)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.cfg.loss.label_smoothing)
        correct = float((logits.argmax(-1) == labels).sum())
        return loss, {"train_top1": correct}

    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> Records:
        logits = model(self.model_inputs(batch)).float().numpy()  # (B, K)
        labels = batch[self.label_column].long().numpy()  # (B,)
        return {
            "label": labels,
            "top5": cls_metrics.top_k(logits, 5),
            "loss": cls_metrics.cross_entropy(logits, labels),
        }

    def metrics(self, records: Records) -> dict[str, float]:
        labels, top = records["label"], records["top5"]
        if labels.size == 0:
            raise ValueError("the evaluated split has no rows")
        return {
            "val_top1": float((top[:, 0] == labels).mean()),
            "val_top5": float(cls_metrics.top_k_hits(top, labels).mean()),
            "val_loss": float(records["loss"].mean()),
        }

    def confusion_png(self, records: Records, label_names: list[str]) -> bytes:
        from pipelines.figures import confusion_png

        matrix = cls_metrics.confusion_matrix(
            records["label"], records["top5"][:, 0], len(label_names)
        )
        top1 = float((records["top5"][:, 0] == records["label"]).mean())
        return confusion_png(matrix, label_names, f"val: top-1 {top1:.3f}")


def predicted(outputs: Any) -> np.ndarray:
    """(B,) best class of (B, K) logits."""
    return torch.as_tensor(outputs).argmax(-1).numpy()
