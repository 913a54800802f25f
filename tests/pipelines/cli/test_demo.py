"""``perceiver-pipeline demo`` as a user runs it: the console script, its own local Ray
cluster, a real ``mlflow server``, output read through a pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import torch


def test_demo_prints_steps_and_summary_and_logs_the_engines(mlflow_server, tmp_path):
    out = tmp_path / "demo"
    script = Path(sys.executable).parent / "perceiver-pipeline"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "RAY_ADDRESS": "",  # its own local cluster, as `make demo`
    }
    proc = subprocess.run(
        [
            str(script),
            "demo",
            "--out",
            str(out),
            "--set",
            "train.epochs=3",
            "--set",
            "tracking.experiment=demo-test",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    # What a user sees: banners and the summary on stdout, one line per long step on stderr
    # (no bars in a pipe), and none of the engines' output.
    progress = proc.stderr.splitlines()
    assert [line.split(":")[0] for line in progress[1:]] == [
        "preprocess image",
        "train",
        "evaluate val",
        "promote",
    ], proc.stderr
    assert progress[0].startswith("engine logs (Ray, DeepSpeed, MLflow): ")
    for needle in (
        "=== [0/5] generate",
        "=== [2/5] train image_classification",
        "=== summary ===",
        "quarantined  2 file(s)",
        "empty file (0 bytes)",
        "'champion' moved to version",
        "load it      mlflow.pytorch.load_model('models:/perceiver-image@champion')",
        "engine logs",
    ):
        assert any(needle in line for line in lines), needle
    assert len(lines) < 60, proc.stdout
    for noise in ("RayTrainWorker", "deepspeed.ops", "INFO ", "WARNING", "Downloading artifacts"):
        assert noise not in proc.stdout + proc.stderr, noise
    logs = sorted((out / "logs").glob("demo-*.log"))
    assert len(logs) == 1 and str(logs[0]) in proc.stdout
    log = logs[0].read_text()
    assert "RayTrainWorker" in log and "Started a local Ray instance" in log

    client = mlflow.MlflowClient(mlflow_server)
    champion = client.get_model_version_by_alias("perceiver-image", "champion")
    run = client.get_run(champion.run_id)
    assert run.info.status == "FINISHED"
    assert {"val_top1", "val_top5", "val_loss", "train_loss"} <= set(run.data.metrics)
    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pytorch.load_model("models:/perceiver-image@champion")
    images = np.zeros((2, 36, 36, 3), dtype=np.uint8)  # the shards' size: the model crops
    with torch.no_grad():
        assert model(torch.from_numpy(images)).shape == (2, 10)
