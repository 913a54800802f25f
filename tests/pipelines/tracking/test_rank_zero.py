"""Rank 0's step metrics: buffered, sent in batches and before checkpoints, never twice."""

from __future__ import annotations

import mlflow
import pytest

from pipelines.tracking.rank_zero import STEP_METRIC, RankZeroTracker


def _run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("t")).info.run_id
    return uri, client, run_id


def _steps(client, run_id, key=STEP_METRIC):
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def test_step_metrics_wait_in_the_buffer_until_a_flush(tmp_path):
    uri, client, run_id = _run(tmp_path)
    tracker = RankZeroTracker(uri, run_id, system_metrics=0, flush_seconds=3600)
    for step in range(1, 6):
        tracker.log_step(step, {STEP_METRIC: 1.0 / step, "learning_rate": 0.1})
    assert _steps(client, run_id) == []  # no request per step
    tracker.flush()  # what the trainer does before saving a checkpoint
    assert _steps(client, run_id) == [(s, 1.0 / s) for s in range(1, 6)]
    assert len(_steps(client, run_id, "learning_rate")) == 5
    tracker.log_step(6, {STEP_METRIC: 0.5})
    tracker.log_epoch(6, {"epoch_train_loss": 0.4})  # an epoch's metrics flush the steps first
    assert _steps(client, run_id)[-1] == (6, 0.5)
    assert _steps(client, run_id, "epoch_train_loss") == [(6, 0.4)]
    tracker.log_step(7, {STEP_METRIC: 0.25})
    tracker.close()  # and so does the end (or failure) of training
    assert _steps(client, run_id)[-1] == (7, 0.25)


def test_a_restarted_tracker_logs_each_step_once(tmp_path):
    uri, client, run_id = _run(tmp_path)
    first = RankZeroTracker(uri, run_id, system_metrics=0, flush_seconds=0)
    for step in (1, 2, 3):
        first.log_step(step, {STEP_METRIC: float(step)})
    assert len(_steps(client, run_id)) == 3  # flush_seconds=0: sent at every step
    first.log_step(4, {STEP_METRIC: 4.0})  # sent too; then the worker is lost
    # The restarted group resumes from a checkpoint at step 2 and recomputes steps 3-5.
    again = RankZeroTracker(uri, run_id, system_metrics=0, flush_seconds=3600)
    for step in (3, 4, 5):
        again.log_step(step, {STEP_METRIC: 10.0 * step})
    again.close()
    assert _steps(client, run_id) == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 50.0)]


def test_a_negative_flush_interval_is_refused(tmp_path):
    uri, _, run_id = _run(tmp_path)
    with pytest.raises(ValueError, match="flush_seconds must be >= 0, got -1"):
        RankZeroTracker(uri, run_id, system_metrics=0, flush_seconds=-1)
