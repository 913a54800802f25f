"""Ray Train + DeepSpeed on 2 CPU workers: ZeRO stages, checkpoints, exact resume, failures.

Real Ray (one session cluster), real DeepSpeed (gloo), a real ``mlflow server``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

from perceiver.builders import build
from pipelines.cli import main
from pipelines.tracking.runs import end_run, model_uri_of_run, start_run
from pipelines.training.driver import TrainingDiverged, planned_steps, train
from pipelines.training.state import CHECKPOINT_TAG
from tests.pipelines.helpers import tiny_config


def logged_state(uri: str, run_id: str) -> dict[str, torch.Tensor]:
    mlflow.set_tracking_uri(uri)
    model = mlflow.pytorch.load_model(model_uri_of_run(uri, run_id))
    return {k: v.float() for k, v in model.model.state_dict().items()}


def step_losses(uri: str, run_id: str) -> list[tuple[int, float]]:
    history = mlflow.MlflowClient(uri).get_metric_history(run_id, "train_loss")
    return sorted((m.step, m.value) for m in history)


def train_logged(cfg, uri: str, name: str):
    run_id = start_run(cfg, uri, run_name=name)
    outcome = train(cfg, tracking_uri=uri, run_id=run_id)
    end_run(uri, run_id)
    return run_id, outcome


def test_zero3_consolidated_weights_equal_the_checkpoint(toy_shards, mlflow_server, tmp_path):
    cfg = tiny_config(
        toy_shards,
        tmp_path / "ray",
        num_classes=2,
        deepspeed={"zero_stage": 3},
        train={"system_metrics_seconds": 0},
        tracking={"tracking_uri": mlflow_server, "experiment": "t-z3"},
    )
    run_id, outcome = train_logged(cfg, mlflow_server, "zero3")
    losses = [m["epoch_train_loss"] for m in outcome.history]
    assert len(losses) == 3 and losses[-1] < losses[0]  # it learns the toy split
    # Every rank's ZeRO-3 shard is in the checkpoint; consolidated, it is the logged model,
    # whose weights were gathered from the live (partitioned) parameters.
    state = get_fp32_state_dict_from_zero_checkpoint(outcome.checkpoint_path, tag=CHECKPOINT_TAG)
    logged = logged_state(mlflow_server, run_id)
    assert set(state) == set(logged)
    for key, value in state.items():
        torch.testing.assert_close(value, logged[key], rtol=0, atol=0)
    restored = build(cfg.model).eval()
    restored.load_state_dict(state, strict=True)
    client = mlflow.MlflowClient(mlflow_server)
    run = client.get_run(run_id)
    assert run.data.params["deepspeed.zero_stage"] == "3"
    assert [s for s, _ in step_losses(mlflow_server, run_id)] == list(
        range(1, planned_steps(cfg, files(toy_shards)) + 1)
    )
    assert {"val_top1", "epoch_train_loss", "data_wait_fraction"} <= set(run.data.metrics)
    assert outcome.best_checkpoint_path is not None
    # A rank holds at least its partition of the model states: 16 bytes per parameter / N.
    psi = sum(p.numel() for p in restored.parameters())
    held = outcome.history[-1]["worker_tensor_mib"]
    assert held >= 16 * psi / cfg.train.num_workers / 2**20
    assert outcome.history[-1]["worker_peak_rss_mib"] > held


def files(shards: Path) -> list[dict]:
    from preprocessing.engine.manifest import read_manifest

    manifest = read_manifest(shards)
    return [{"path": s.path, "rows": s.rows} for s in manifest.splits["train"].shards]


def test_zero1_trains(toy_shards, tmp_path):
    cfg = tiny_config(
        toy_shards,
        tmp_path / "ray",
        num_classes=2,
        deepspeed={"zero_stage": 1},
        train={"epochs": 2},
    )
    outcome = train(cfg)
    assert [m["epoch"] for m in outcome.history] == [1, 2]
    state = get_fp32_state_dict_from_zero_checkpoint(outcome.checkpoint_path, tag=CHECKPOINT_TAG)
    build(cfg.model).load_state_dict(state, strict=True)


def test_a_run_restored_by_name_continues(toy_shards, tmp_path):
    """Rerunning a run name (as after a driver failure) continues from its checkpoint."""
    first = tiny_config(
        toy_shards, tmp_path / "ray", num_classes=2, train={"epochs": 1, "run_name": "again"}
    )
    one = train(first)
    second = tiny_config(
        toy_shards, tmp_path / "ray", num_classes=2, train={"epochs": 2, "run_name": "again"}
    )
    two = train(second)
    assert [m["epoch"] for m in two.history] == [1, 2]
    assert two.history[0] == one.history[0]  # epoch 1 came back from the checkpoint
    assert two.metrics["step"] > one.metrics["step"]


def kill_rank_after_first_step_checkpoint(run_dir: Path, rank: int, done: threading.Event):
    """Wait for a mid-epoch checkpoint of the run, then SIGKILL one worker, by its pid."""
    deadline = time.monotonic() + 600
    while not done.is_set() and time.monotonic() < deadline:
        for state in run_dir.glob("checkpoint_*/train_state.json"):
            if '"cursor": 0' not in state.read_text():  # a step checkpoint, mid-epoch
                pid = int((run_dir / "workers" / f"rank{rank}.pid").read_text())
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.05)
    return None


def test_a_killed_worker_resumes_exactly(toy_shards, mlflow_server, tmp_path):
    """A worker killed after the first step checkpoint: the group restarts from it, skips the
    batches already consumed in the same order, and the run ends as an uninterrupted one."""
    common = {
        "train": {
            "epochs": 2,
            "checkpoint_every_steps": 2,
            "max_failures": 1,
            "system_metrics_seconds": 0,
        },
        "tracking": {"tracking_uri": mlflow_server, "experiment": "t-kill"},
    }
    straight_cfg = tiny_config(toy_shards, tmp_path / "a", 2, **common)
    straight_id, straight = train_logged(straight_cfg, mlflow_server, "straight")

    killed_cfg = tiny_config(
        toy_shards, tmp_path / "b", 2, **{**common, "train": {**common["train"], "run_name": "k"}}
    )
    done = threading.Event()
    result: dict[str, int | None] = {}
    killer = threading.Thread(
        target=lambda: result.update(
            pid=kill_rank_after_first_step_checkpoint(tmp_path / "b" / "k", 1, done)
        )
    )
    killer.start()
    try:
        killed_id, killed = train_logged(killed_cfg, mlflow_server, "killed")
    finally:
        done.set()
        killer.join()
    assert result["pid"] is not None  # the worker was killed mid-run
    restarted = int((tmp_path / "b" / "k" / "workers" / "rank1.pid").read_text())
    assert restarted != result["pid"]  # a new worker group took over

    planned = planned_steps(killed_cfg, files(toy_shards))
    assert killed.metrics["step"] == straight.metrics["step"] == planned
    # One train_loss per step, no gap, no repeat; the same values as the uninterrupted run.
    losses = step_losses(mlflow_server, killed_id)
    assert [s for s, _ in losses] == list(range(1, planned + 1))
    np.testing.assert_allclose(
        [v for _, v in losses], [v for _, v in step_losses(mlflow_server, straight_id)], rtol=1e-5
    )
    a, b = logged_state(mlflow_server, straight_id), logged_state(mlflow_server, killed_id)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)


def test_a_non_finite_loss_stops_at_its_step_and_keeps_the_last_checkpoint(toy_shards, tmp_path):
    cfg = tiny_config(
        toy_shards,
        tmp_path / "ray",
        num_classes=2,
        optimizer={"lr": 1e36, "warmup_steps": 0},
        deepspeed={"gradient_clipping": 0.0},
        train={"epochs": 2, "checkpoint_every_steps": 1},
    )
    with pytest.raises(
        TrainingDiverged, match=r"not finite at optimizer step \d+.*checkpoint is .*checkpoint_"
    ):
        train(cfg)


def test_train_resume_continues_the_same_mlflow_run(toy_shards, mlflow_server, tmp_path):
    config = tmp_path / "c.yaml"
    cfg = tiny_config(toy_shards, tmp_path / "ray", 2, train={"epochs": 1})
    import yaml

    tree = cfg.model_dump(mode="json")
    tree["tracking"]["tracking_uri"] = mlflow_server
    tree["train"]["system_metrics_seconds"] = 0
    config.write_text(yaml.safe_dump(tree))
    args = ["train", "--verbose", "--config", str(config), "--set", "train.run_name=cli-run"]
    assert main(args) == 0
    client = mlflow.MlflowClient(mlflow_server)
    (run,) = client.search_runs(
        [client.get_experiment_by_name(cfg.tracking.experiment).experiment_id],
        "attributes.run_name = 'cli-run'",
    )
    first_steps = step_losses(mlflow_server, run.info.run_id)
    resume = ["train", "--verbose", "--resume", "cli-run", "--storage-path", str(tmp_path / "ray")]
    assert main([*resume, "--set", "train.epochs=2"]) == 0
    again = client.get_run(run.info.run_id)
    assert again.info.status == "FINISHED"
    steps = step_losses(mlflow_server, run.info.run_id)
    assert steps[: len(first_steps)] == first_steps and len(steps) == 2 * len(first_steps)
    epochs = client.get_metric_history(run.info.run_id, "epoch_train_loss")
    assert len(epochs) == 2


def test_bf16_trains_and_logs_an_fp32_model(toy_shards, mlflow_server, tmp_path):
    """DeepSpeed's bf16 mode (the GPU configs'): the adapters' float32 features are cast to
    the model's dtype; the logged model is consolidated in fp32."""
    cfg = tiny_config(
        toy_shards,
        tmp_path / "ray",
        num_classes=2,
        deepspeed={"precision": "bf16"},
        train={"epochs": 1, "system_metrics_seconds": 0},
        tracking={"tracking_uri": mlflow_server, "experiment": "t-bf16"},
    )
    run_id, outcome = train_logged(cfg, mlflow_server, "bf16")
    assert np.isfinite(outcome.metrics["epoch_train_loss"])
    assert np.isfinite(outcome.metrics["val_top1"])
    state = logged_state(mlflow_server, run_id)
    assert all(v.dtype == torch.float32 for v in state.values())
