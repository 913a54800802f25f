"""The demo's whole chain (sample data -> Ray Data -> ZeRO-2 training -> eval -> registry)."""

import mlflow
import numpy as np
import torch
from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

from perceiver import image_classifier
from pipelines.config import builtin_config_path, load_config
from pipelines.demo import run_demo
from pipelines.train_loop import CHECKPOINT_TAG


def model_state_keys(summary):
    return image_classifier(load_config(builtin_config_path("demo")).model).state_dict().keys()


def test_demo_chain_ends_with_a_champion(mlflow_server, tmp_path, ray_cluster, capsys):
    summary = run_demo(
        tmp_path / "demo",
        [
            "train.epochs=3",
            f"tracking.tracking_uri={mlflow_server}",
            "tracking.experiment=demo-test",
            "tracking.model_name=demo-test-model",
            "deepspeed.micro_batch_size=4",
        ],
        train_per_class=8,
        val_per_class=3,
    )
    out = capsys.readouterr().out
    for needle in (
        "=== summary ===",
        "quarantined  2 file(s)",
        "empty file (0 bytes)",
        "truncated",
        "mlflow run",
        "'champion' moved to version",
        "MLflow UI",
    ):
        assert needle in out

    assert summary.inputs_seen == 5 * 8 + 5 * 3
    assert sum(summary.rows.values()) + len(summary.quarantined) == summary.inputs_seen
    losses = [m["train_loss"] for m in summary.train_history]
    assert len(losses) == 3 and losses[-1] < losses[0]  # ZeRO-2 learns
    assert 0.0 <= summary.val_metrics["val_top1"] <= 1.0
    # Every rank's ZeRO-2 shard is in the reported checkpoint, which loads back.
    state = get_fp32_state_dict_from_zero_checkpoint(summary.checkpoint_path, tag=CHECKPOINT_TAG)
    assert set(state) == set(model_state_keys(summary))

    client = mlflow.MlflowClient(mlflow_server)
    run = client.get_run(summary.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["deepspeed.zero_stage"] == "2"
    assert {"train_step_loss", "train_loss", "val_top1", "val_top5", "val_loss"} <= set(
        run.data.metrics
    )
    assert {"confusion_val.png", "predictions_val.png", "train_loss.png", "config.yaml"} <= {
        a.path for a in client.list_artifacts(summary.run_id)
    }
    assert summary.promotion is not None and summary.promotion.promoted
    assert (
        client.get_model_version_by_alias("demo-test-model", "champion").version == summary.version
    )

    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pytorch.load_model("models:/demo-test-model@champion")
    image = np.zeros((224, 224, 3), dtype=np.uint8)
    with torch.no_grad():
        assert model(torch.from_numpy(image)[None]).shape == (1, 5)
