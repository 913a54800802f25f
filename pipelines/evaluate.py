"""Evaluation: a Ray Data batch-inference job over a split's shards, logged to MLflow.

The model is loaded from MLflow (the very artefact that will be registered), by a Ray Data
actor, and applied to the split with ``map_batches``; only per-row predictions come back.
Metrics: ``val_top1``, ``val_top5`` (when there are more than 5 classes, else equal to 1.0
by definition and still reported), ``val_loss`` (mean cross-entropy), per-class accuracy,
a confusion matrix picture and a grid of sample predictions as MLflow artefacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.config import PipelineConfig
from pipelines.figures import confusion_png, predictions_png
from pipelines.tracking import log_artifact_bytes, model_uri_of_run
from preprocessing.engine.manifest import read_manifest


class BatchPredictor:
    """A Ray Data actor: loads the model once, scores batches of images."""

    def __init__(self, model_uri: str, tracking_uri: str) -> None:
        import mlflow
        import torch

        torch.set_num_threads(1)
        mlflow.set_tracking_uri(tracking_uri)
        self.model = mlflow.pytorch.load_model(model_uri, map_location="cpu").eval()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            images = torch.from_numpy(np.array(batch["image"]))  # (B, H, W, 3) uint8, writable
            logits = self.model(images)  # (B, num_classes)
            labels = torch.from_numpy(batch["label"]).long()
            loss = F.cross_entropy(logits, labels, reduction="none")
            k = min(5, logits.shape[-1])
            topk = logits.topk(k, dim=-1).indices  # (B, k)
        return {
            "label": batch["label"],
            "pred": topk[:, 0].numpy(),
            "top5_hit": (topk == labels[:, None]).any(-1).numpy(),
            "loss": loss.numpy(),
        }


@dataclass
class EvalResult:
    metrics: dict[str, float]
    confusion: np.ndarray
    classes: list[str]


def sample_predictions(
    ds: Any, model_uri: str, tracking_uri: str, count: int = 12
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First ``count`` rows of ``ds`` with the model's predictions (scored in the driver)."""
    batch = ds.take_batch(count, batch_format="numpy")
    out = BatchPredictor(model_uri, tracking_uri)(batch)
    return batch["image"], batch["label"], out["pred"]


def summarise(rows: dict[str, np.ndarray], num_classes: int, prefix: str) -> EvalResult:
    labels, preds = rows["label"].astype(int), rows["pred"].astype(int)
    if labels.size == 0:
        raise ValueError("the evaluated split has no rows")
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, preds), 1)
    metrics = {
        f"{prefix}_top1": float((labels == preds).mean()),
        f"{prefix}_top5": float(rows["top5_hit"].mean()),
        f"{prefix}_loss": float(rows["loss"].mean()),
        f"{prefix}_samples": float(labels.size),
    }
    return EvalResult(metrics=metrics, confusion=confusion, classes=[])


def evaluate(
    cfg: PipelineConfig, run_id: str, tracking_uri: str, split: str | None = None
) -> EvalResult:
    """Score the run's logged model on ``split`` (default ``data.val_split``); log to the run."""
    from mlflow import MlflowClient
    from ray.data import ActorPoolStrategy

    from pipelines.train import split_dataset

    split = split or cfg.data.val_split
    manifest = read_manifest(cfg.data.shards)
    ds = split_dataset(cfg.data.shards, manifest, split)
    model_uri = model_uri_of_run(tracking_uri, run_id)
    scored = ds.map_batches(
        BatchPredictor,
        fn_constructor_kwargs={"model_uri": model_uri, "tracking_uri": tracking_uri},
        batch_size=cfg.evaluate.batch_size,
        compute=ActorPoolStrategy(size=1),
        num_cpus=1,
    )
    rows: dict[str, Any] = {k: [] for k in ("label", "pred", "top5_hit", "loss")}
    for batch in scored.iter_batches(batch_format="numpy", batch_size=None):
        for k in rows:
            rows[k].append(batch[k])
    arrays = {k: np.concatenate(v) for k, v in rows.items()}
    classes = sorted(manifest.label_map, key=manifest.label_map.__getitem__)
    prefix = "val" if split == cfg.data.val_split else split
    result = summarise(arrays, len(classes), prefix)
    result.classes = classes
    client = MlflowClient(tracking_uri)
    for key, value in result.metrics.items():
        client.log_metric(run_id, key, value)
    png = confusion_png(
        result.confusion,
        classes,
        f"{split}: top-1 {result.metrics[f'{prefix}_top1']:.3f}",
    )
    log_artifact_bytes(tracking_uri, run_id, f"confusion_{split}.png", png)
    images, labels, preds = sample_predictions(ds, model_uri, tracking_uri)
    grid = predictions_png(images, labels, preds, classes)
    log_artifact_bytes(tracking_uri, run_id, f"predictions_{split}.png", grid)
    return result
