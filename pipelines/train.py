"""Driver side of training: Ray Train's TorchTrainer over the preprocessed shards."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.train_loop import train_loop_per_worker
from preprocessing.engine.manifest import Manifest, read_manifest


@dataclass
class TrainOutcome:
    run_id: str | None
    metrics: dict[str, Any]
    history: list[dict[str, Any]]  # per-epoch metrics of every epoch, resumed ones included
    checkpoint_path: str | None
    storage_path: str


def check_against_manifest(cfg: PipelineConfig, manifest: Manifest) -> None:
    """Fail before any worker starts if the model and the shards disagree."""
    num_classes = len(manifest.label_map)
    if cfg.model.num_classes != num_classes:
        raise ValueError(
            f"model.num_classes={cfg.model.num_classes} but the shards in "
            f"{str(cfg.data.shards)!r} have {num_classes} classes"
        )
    crop = manifest.config.get("crop_size")
    if crop is not None and cfg.model.image_shape[:2] != (crop, crop):
        raise ValueError(
            f"model.image_shape={cfg.model.image_shape} but the shards hold {crop}x{crop} images"
        )
    if (
        cfg.data.train_split not in manifest.splits
        or not manifest.splits[cfg.data.train_split].rows
    ):
        raise ValueError(
            f"data.train_split={cfg.data.train_split!r} has no rows in {str(cfg.data.shards)!r}"
        )


def split_dataset(shards: Path, manifest: Manifest, split: str) -> Any:
    """The rows of one split, as a Ray Dataset over exactly the shards the manifest lists."""
    import ray

    paths = [str(Path(shards).resolve() / p) for p in manifest.shard_paths(split)]
    if not paths:
        raise ValueError(f"split {split!r} in {str(shards)!r} has no shards")
    return ray.data.read_parquet(paths, columns=["image", "label"])


def train(
    cfg: PipelineConfig, tracking_uri: str | None = None, run_id: str | None = None
) -> TrainOutcome:
    """Train with DeepSpeed ZeRO on ``cfg.train.num_workers`` Ray Train workers."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    manifest = read_manifest(cfg.data.shards)
    check_against_manifest(cfg, manifest)
    train_ds = split_dataset(cfg.data.shards, manifest, cfg.data.train_split)
    storage = Path(cfg.train.storage_path).resolve()
    storage.mkdir(parents=True, exist_ok=True)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "pipeline": cfg.model_dump(mode="json"),
            "mlflow_run_id": run_id,
            "tracking_uri": tracking_uri,
            "label_map": manifest.label_map,
            "train_rows": manifest.splits[cfg.data.train_split].rows,
        },
        scaling_config=ScalingConfig(
            num_workers=cfg.train.num_workers,
            use_gpu=cfg.train.use_gpu,
            resources_per_worker={"CPU": cfg.train.cpus_per_worker},
        ),
        torch_config=TorchConfig(backend="nccl" if cfg.train.use_gpu else "gloo"),
        run_config=RunConfig(
            name=cfg.train.run_name,
            storage_path=str(storage),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.train.checkpoints_to_keep),
            failure_config=FailureConfig(max_failures=cfg.train.max_failures),
        ),
        datasets={"train": train_ds},
    )
    result = trainer.fit()
    metrics = dict(result.metrics or {})
    history = metrics.pop("history", [])
    return TrainOutcome(
        run_id=run_id,
        metrics=metrics,
        history=history,
        checkpoint_path=result.checkpoint.path if result.checkpoint else None,
        storage_path=str(storage),
    )
