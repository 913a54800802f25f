"""Every task trains (ZeRO-2, 2 CPU workers), evaluates, registers and promotes.

Real Ray (Ray Data preprocessing and batch inference, Ray Train), real DeepSpeed, a real
``mlflow server``; each task on its own sample data, preprocessed with its debug config.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import torch

from pipelines.chain import run_pipeline
from pipelines.tasks import TASKS
from tests.pipelines.helpers import debug_config

# The metrics ``evaluate`` logs, exactly as the issue names them, and the pictures.
EXPECTED = {
    "image_classification": (
        {"val_top1", "val_top5", "val_loss"},
        {"confusion_val.png", "predictions_val.png"},
    ),
    "audio_classification": (
        {"val_mAP", "val_auc", "val_dprime", "val_loss"},
        {"class_ap_val.png", "spectrograms_val.png"},
    ),
    "video_classification": (
        {"val_top1", "val_top5", "val_loss"},
        {"confusion_val.png", "frames_val.png"},
    ),
    "kinetics_autoencoding": (
        {"val_video_psnr", "val_audio_psnr", "val_top1", "val_loss"},
        {"reconstruction_val.png", "audio_val.png", "audio_val_0.wav"},
    ),
    "optical_flow": (
        {"val_epe", "val_1px", "val_3px", "val_5px", "val_fl_all"},
        {"flow_val.png"},
    ),
}


def val_batch(shards, task, rows: int = 2) -> dict[str, np.ndarray]:
    """The first rows of the val split, as the shards hold them."""
    from pipelines.training.data import ShardFile, ShardReader
    from preprocessing.engine.manifest import read_manifest

    manifest = read_manifest(shards)
    split = task.cfg.data.val_split
    files = [ShardFile(s.path, s.rows) for s in manifest.splits[split].shards]
    n = min(rows, files[0].rows)
    reader = ShardReader(shards, files, list(task.columns))
    return reader.read(np.array([[0, i] for i in range(n)]))


@pytest.mark.parametrize("task_name", list(TASKS))
def test_task_trains_evaluates_registers_and_promotes(
    task_name, task_shards, mlflow_server, tmp_path
):
    shards = task_shards(task_name).shards
    cfg = debug_config(
        task_name,
        shards,
        tmp_path / "ray",
        "train.epochs=2",
        "train.system_metrics_seconds=0.5",
        f"tracking.tracking_uri={mlflow_server}",
        f"tracking.experiment=every-task-{task_name}",
        f"tracking.model_name=every-task-{task_name}",
    )
    summary = run_pipeline(cfg)
    metrics, pictures = EXPECTED[task_name]
    assert metrics <= set(summary.val_metrics)
    assert all(np.isfinite(summary.val_metrics[m]) or m.endswith("psnr") for m in metrics)
    assert pictures <= set(summary.pictures)
    assert [h["epoch"] for h in summary.train_history] == [1, 2]
    assert summary.promotion is not None and summary.promotion.promoted

    client = mlflow.MlflowClient(mlflow_server)
    run = client.get_run(summary.run_id)
    assert run.info.status == "FINISHED"
    assert metrics <= set(run.data.metrics)
    steps = client.get_metric_history(summary.run_id, "train_loss")
    assert [m.step for m in steps] == list(range(1, summary.train_metrics["step"] + 1))
    for per_step in ("learning_rate", "samples_per_second", "input_positions_per_second"):
        assert per_step in run.data.metrics
    assert "data_wait_fraction" in run.data.metrics
    assert any(k.startswith("system/") for k in run.data.metrics)  # MLflow's system metrics
    artifacts = {a.path for a in client.list_artifacts(summary.run_id)}
    assert pictures | {"config.yaml", "label_map.json", "train_loss.png"} <= artifacts
    version = client.get_model_version_by_alias(f"every-task-{task_name}", "champion")
    assert version.version == summary.version

    # The logged model loads with MLflow alone and takes a batch of the val split's columns
    # as they are (a dict of them for the Kinetics autoencoder).
    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pytorch.load_model(f"models:/every-task-{task_name}@champion").eval()
    task = TASKS[task_name](cfg)
    batch = val_batch(shards, task)
    inputs = task.model_inputs({k: torch.from_numpy(np.array(v)) for k, v in batch.items()})
    with torch.no_grad():
        out = model(inputs)
    n = len(next(iter(batch.values())))
    if isinstance(out, dict):
        assert set(out) == {"audio", "image", "label"} and out["label"].shape[0] == n
    else:
        assert out.shape[0] == n and torch.isfinite(out).all()
