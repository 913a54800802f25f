"""Ray Train + DeepSpeed ZeRO-3 on 2 CPU workers, with MLflow on a real server."""

import mlflow
import numpy as np
import torch
from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

from perceiver import image_classifier
from pipelines.tracking import end_run, model_uri_of_run, start_run
from pipelines.train import train
from pipelines.train_loop import CHECKPOINT_TAG

from .helpers import tiny_config


def test_zero3_trains_checkpoints_and_logs_from_rank0(toy_shards, mlflow_server, tmp_path):
    cfg = tiny_config(
        toy_shards,
        tmp_path / "ray",
        num_classes=2,
        deepspeed={"zero_stage": 3},
        tracking={"tracking_uri": mlflow_server, "experiment": "t-z3"},
    )
    run_id = start_run(cfg, mlflow_server, run_name="zero3")
    outcome = train(cfg, tracking_uri=mlflow_server, run_id=run_id)
    end_run(mlflow_server, run_id)

    # Loss goes down on the learnable toy split.
    losses = [m["train_loss"] for m in outcome.history]
    assert len(losses) == 3
    assert losses[-1] < losses[0]
    assert outcome.metrics["epoch"] == 3

    # The reported checkpoint holds every rank's ZeRO-3 shard and loads back into the model.
    ckpt = outcome.checkpoint_path
    state = get_fp32_state_dict_from_zero_checkpoint(ckpt, tag=CHECKPOINT_TAG)
    restored = image_classifier(cfg.model).eval()
    restored.load_state_dict(state, strict=True)

    # Rank 0 logged params, per-step metrics and the final model; it equals the checkpoint.
    client = mlflow.MlflowClient(mlflow_server)
    run = client.get_run(run_id)
    assert run.data.params["deepspeed.zero_stage"] == "3"
    assert len(client.get_metric_history(run_id, "train_step_loss")) >= 3
    assert {"train_loss", "train_top1"} <= set(run.data.metrics)
    mlflow.set_tracking_uri(mlflow_server)
    logged = mlflow.pytorch.load_model(model_uri_of_run(mlflow_server, run_id)).eval()
    x = torch.from_numpy(
        np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    )
    with torch.no_grad():
        torch.testing.assert_close(logged(x), restored(x))
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "label_map.json", "train_loss.png"} <= artifacts


def test_zero2_run_resumes_from_its_latest_checkpoint(toy_shards, tmp_path):
    """A run restored by name (as after a driver or worker-group failure) continues."""
    first = tiny_config(
        toy_shards, tmp_path / "ray", num_classes=2, train={"epochs": 1, "run_name": "resume"}
    )
    one = train(first)
    assert [m["epoch"] for m in one.history] == [1]

    second = tiny_config(
        toy_shards, tmp_path / "ray", num_classes=2, train={"epochs": 2, "run_name": "resume"}
    )
    two = train(second)
    # Epoch 1 came back from the checkpoint (engine + optimizer state); only epoch 2 ran.
    assert [m["epoch"] for m in two.history] == [1, 2]
    assert two.history[0] == one.history[0]
    assert two.metrics["global_step"] > one.metrics["global_step"]
    state = get_fp32_state_dict_from_zero_checkpoint(two.checkpoint_path, tag=CHECKPOINT_TAG)
    image_classifier(second.model).load_state_dict(state, strict=True)
