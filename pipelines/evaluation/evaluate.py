"""``evaluate``: score a training run's logged model on a split and log what it finds.

The task's metrics go to the run (``val_*``, exact names per task in ``pipelines.tasks``),
and its pictures as artefacts: the task draws them from the split's first rows, the model's
output on them, and every row's records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.evaluation.score import score_models, split_dataset


@dataclass
class EvalResult:
    metrics: dict[str, float]
    pictures: list[str]


def label_names(label_map: dict[str, int]) -> list[str]:
    return sorted(label_map, key=label_map.__getitem__)


def evaluate(cfg: Any, run_id: str, tracking_uri: str, split: str | None = None) -> EvalResult:
    """Score the run's logged model on ``split`` (default ``data.val_split``); log to the run."""
    import mlflow
    import torch
    from mlflow import MlflowClient

    from pipelines.tasks import task_for
    from pipelines.tasks.base import to_tensors
    from pipelines.tracking.runs import log_artifact_bytes, model_uri_of_run
    from preprocessing.engine.manifest import read_manifest

    task = task_for(cfg)
    split = split or cfg.data.val_split
    manifest = read_manifest(cfg.data.shards)
    task.check_shards(manifest, str(cfg.data.shards))
    model_uri = model_uri_of_run(tracking_uri, run_id)
    scores = score_models(cfg, {"model": model_uri}, tracking_uri, split)["model"]
    prefix = "val" if split == cfg.data.val_split else split
    metrics = {
        (prefix + key[3:] if key.startswith("val_") else key): value
        for key, value in scores.metrics.items()
    }
    client = MlflowClient(tracking_uri)
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    client.log_metric(run_id, f"{prefix}_samples", float(len(next(iter(scores.records.values())))))
    names: list[str] = []
    if cfg.evaluate.pictures:
        ds = split_dataset(cfg.data.shards, split, list(task.columns))
        examples = task.eval_inputs(ds.take_batch(cfg.evaluate.pictures, batch_format="numpy"))
        examples = {k: np.array(v) for k, v in examples.items()}
        mlflow.set_tracking_uri(tracking_uri)
        model = mlflow.pytorch.load_model(model_uri, map_location="cpu").eval()
        with torch.no_grad():
            outputs = task.outputs(model, to_tensors(examples))
        files = task.pictures(examples, outputs, scores.records, label_names(manifest.label_map))
        for name, data in files.items():
            log_artifact_bytes(tracking_uri, run_id, name, data)
            names.append(name)
    return EvalResult(metrics=metrics, pictures=names)
