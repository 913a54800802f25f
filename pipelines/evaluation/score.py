"""Scoring logged models on a split: a Ray Data batch-inference job, one pass for all models.

The models are loaded from MLflow (the very artefacts that are registered and promoted) by a
Ray Data actor and applied with ``map_batches``; each batch is read once and scored by every
model, so two models compared here saw the same rows in the same evaluation. Only the
task's per-row records come back to the driver (``pipelines.tasks``), where the task turns
each model's records into its metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class BatchScorer:
    """A Ray Data actor: loads each model once, scores batches with every one of them."""

    def __init__(self, pipeline: dict[str, Any], model_uris: dict[str, str], tracking_uri: str):
        import mlflow
        import torch

        from pipelines.tasks import pipeline_config, task_for

        torch.set_num_threads(1)
        mlflow.set_tracking_uri(tracking_uri)
        self.task = task_for(pipeline_config(pipeline))
        self.models = {
            name: mlflow.pytorch.load_model(uri, map_location="cpu").eval()
            for name, uri in model_uris.items()
        }

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        from pipelines.tasks.base import to_tensors

        tensors = to_tensors(self.task.eval_inputs(batch))
        out: dict[str, np.ndarray] = {}
        with torch.no_grad():
            for name, model in self.models.items():
                for key, value in self.task.predict(model, tensors).items():
                    out[f"{name}/{key}"] = value
        return out


@dataclass
class Scores:
    metrics: dict[str, float]
    records: dict[str, np.ndarray]


def split_dataset(shards: Path, split: str, columns: list[str]) -> Any:
    """The rows of one split, as a Ray Dataset over exactly the shards the manifest lists."""
    import ray

    from preprocessing.engine.manifest import read_manifest

    manifest = read_manifest(shards)
    paths = [str(Path(shards).resolve() / p) for p in manifest.shard_paths(split)]
    if not paths:
        raise ValueError(f"split {split!r} in {str(shards)!r} has no shards")
    return ray.data.read_parquet(paths, columns=columns)


def score_models(
    cfg: Any,
    model_uris: dict[str, str],
    tracking_uri: str,
    split: str | None = None,
    label: str | None = None,
) -> dict[str, Scores]:
    """{name: model URI} -> {name: its metrics and records on ``split`` (default val)};
    ``label`` names the progress bar (default ``evaluate <split>``)."""
    from ray.data import ActorPoolStrategy

    from pipelines.tasks import task_for

    task = task_for(cfg)
    ds = split_dataset(cfg.data.shards, split or cfg.data.val_split, list(task.columns))
    scored = ds.map_batches(
        BatchScorer,
        fn_constructor_kwargs={
            "pipeline": cfg.model_dump(mode="json"),
            "model_uris": model_uris,
            "tracking_uri": tracking_uri,
        },
        batch_size=cfg.evaluate.batch_size,
        compute=ActorPoolStrategy(size=1),
        num_cpus=1,
    )
    from pipelines.console import console
    from preprocessing.engine.manifest import read_manifest

    split = split or cfg.data.val_split
    rows = read_manifest(cfg.data.shards).splits[split].rows
    parts: dict[str, list[np.ndarray]] = {}
    with console().progress(rows, label or f"evaluate {split}", unit="row") as bar:
        for batch in scored.iter_batches(batch_format="numpy", batch_size=None):
            for key, value in batch.items():
                parts.setdefault(key, []).append(value)
            bar.update(len(next(iter(batch.values()))))
    if not parts:
        raise ValueError(f"split {split!r} has no rows to score")
    result = {}
    for name in model_uris:
        records = {
            key.split("/", 1)[1]: np.concatenate(values)
            for key, values in parts.items()
            if key.startswith(f"{name}/")
        }
        result[name] = Scores(task.metrics(records), records)
    return result
