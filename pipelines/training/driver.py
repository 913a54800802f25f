"""Driver side of training: checks, then Ray Train's TorchTrainer over the planned shards.

Before any worker starts, the task checks the shards against the config (modality, columns,
class count, frame size) and fails naming both sides. Every run has a name (generated when
``train.run_name`` is not set); rerunning a name resumes it from its latest checkpoint (Ray
Train V2's ``RunConfig(name, storage_path)``). ``<storage>/<name>/perceiver_run.json`` records
which MLflow run it logs to and its config, so ``perceiver-pipeline train --resume NAME``
continues a stopped run in the same MLflow run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.console import console
from pipelines.tracking.runs import run_name_for
from pipelines.training.loop import NONFINITE, train_loop_per_worker
from pipelines.training.progress import ProgressWatcher

RUN_FILE = "perceiver_run.json"


class TrainingDiverged(RuntimeError):
    """The loss became non-finite; the last good checkpoint stays."""


@dataclass
class TrainOutcome:
    run_name: str
    run_id: str | None
    metrics: dict[str, Any]
    history: list[dict[str, Any]]  # per-epoch metrics of every epoch, resumed ones included
    checkpoint_path: str | None
    best_checkpoint_path: str | None
    storage_path: str


def run_record(storage: Path, name: str) -> dict[str, Any]:
    """What ``train`` recorded about run ``name`` (for ``--resume``); ValueError if none."""
    path = Path(storage) / name / RUN_FILE
    if not path.is_file():
        runs = sorted(p.parent.name for p in Path(storage).glob(f"*/{RUN_FILE}"))
        raise ValueError(
            f"no training run {name!r} under {str(storage)!r} ({path} not found); runs there: "
            f"{runs or 'none'}"
        )
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def _files(manifest: Any, split: str) -> list[dict[str, Any]]:
    return [{"path": s.path, "rows": s.rows} for s in manifest.splits[split].shards]


def planned_steps(cfg: Any, files: list[dict[str, Any]]) -> int:
    """Optimizer steps of the whole run (the workers compute the same from the same plan)."""
    from pipelines.training.data import ShardFile, plan_epoch

    ds, train = cfg.deepspeed, cfg.train
    plan = plan_epoch(
        [ShardFile(**f) for f in files], train.seed, 0, 0, train.num_workers, ds.micro_batch_size
    )
    return plan.num_batches // ds.gradient_accumulation_steps * train.epochs


def check_splits(cfg: Any, manifest: Any) -> None:
    shards = str(cfg.data.shards)
    train = cfg.data.train_split
    if train not in manifest.splits or not manifest.splits[train].rows:
        raise ValueError(f"data.train_split={train!r} has no rows in {shards!r}")
    val = cfg.data.val_split
    if cfg.train.eval_every_epochs and (
        val not in manifest.splits or not manifest.splits[val].rows
    ):
        raise ValueError(
            f"data.val_split={val!r} has no rows in {shards!r} (set train.eval_every_epochs=0 to "
            "train without validation)"
        )


def train(cfg: Any, tracking_uri: str | None = None, run_id: str | None = None) -> TrainOutcome:
    """Train with DeepSpeed ZeRO on ``cfg.train.num_workers`` Ray Train workers."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from pipelines.tasks import task_for
    from preprocessing.engine.manifest import read_manifest

    task = task_for(cfg)
    shards = Path(cfg.data.shards).resolve()
    manifest = read_manifest(shards)
    task.check_shards(manifest, str(cfg.data.shards))
    check_splits(cfg, manifest)
    storage = Path(cfg.train.storage_path).resolve()
    name = run_name_for(cfg)
    (storage / name).mkdir(parents=True, exist_ok=True)
    record = {
        "mlflow_run_id": run_id,
        "tracking_uri": tracking_uri,
        "task": cfg.task,
        "pipeline": cfg.model_dump(mode="json"),
    }
    (storage / name / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n")
    val = cfg.data.val_split
    train_files = _files(manifest, cfg.data.train_split)
    progress_file = storage / name / "progress.json"
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "pipeline": cfg.model_dump(mode="json"),
            "shards": str(shards),
            "train_files": train_files,
            "progress_file": str(progress_file),
            "val_files": _files(manifest, val) if val in manifest.splits else [],
            "label_map": manifest.label_map,
            "mlflow_run_id": run_id,
            "tracking_uri": tracking_uri,
        },
        scaling_config=ScalingConfig(
            num_workers=cfg.train.num_workers,
            use_gpu=cfg.train.use_gpu,
            resources_per_worker={"CPU": cfg.train.cpus_per_worker},
        ),
        torch_config=TorchConfig(backend="nccl" if cfg.train.use_gpu else "gloo"),
        run_config=RunConfig(
            name=name,
            storage_path=str(storage),
            checkpoint_config=CheckpointConfig(
                num_to_keep=cfg.train.checkpoints_to_keep,
                checkpoint_score_attribute=task.metric,
                checkpoint_score_order="max" if task.higher_is_better else "min",
            ),
            failure_config=FailureConfig(max_failures=cfg.train.max_failures),
        ),
    )
    from ray.train import TrainingFailedError

    try:
        with (
            console().progress(planned_steps(cfg, train_files), "train", unit="step") as bar,
            ProgressWatcher(progress_file, bar),
        ):
            result = trainer.fit()
    except TrainingFailedError as exc:
        found = re.search(rf"{NONFINITE}: ([^\n]*)", str(exc))
        if found is None:
            raise
        checkpoints = sorted((storage / name).glob("checkpoint_*"))
        raise TrainingDiverged(
            f"{found.group(1)}; training stopped. The last good checkpoint is "
            f"{checkpoints[-1] if checkpoints else '(none yet)'}"
        ) from exc
    metrics = dict(result.metrics or {})
    latest = result.checkpoint.path if result.checkpoint else None
    history = metrics.pop("history", [])
    best = result.get_best_checkpoint(task.metric, "max" if task.higher_is_better else "min")
    return TrainOutcome(
        run_name=name,
        run_id=run_id,
        metrics=metrics,
        history=history,
        checkpoint_path=latest,
        best_checkpoint_path=best.path if best else None,
        storage_path=str(storage),
    )
