"""The pipeline's MLflow run around a block: named once, ended by how the block ends."""

from __future__ import annotations

import mlflow
import pytest

from pipelines.tracking.runs import tracked_run
from tests.pipelines.helpers import tiny_config


def test_a_run_is_named_once_and_ends_by_the_block(toy_shards, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = tiny_config(toy_shards, tmp_path / "ray", num_classes=2)
    assert cfg.train.run_name is None
    with tracked_run(cfg, uri, tags={"perceiver.workflow": "w"}) as (named, run_id):
        assert named.train.run_name  # pinned, so Ray Train and MLflow share the name
        run = mlflow.MlflowClient(uri).get_run(run_id)
        assert run.info.status == "RUNNING"
        assert run.info.run_name == named.train.run_name
        assert run.data.tags["perceiver.workflow"] == "w"
    assert mlflow.MlflowClient(uri).get_run(run_id).info.status == "FINISHED"

    resumed = tracked_run(named, uri, run_id)
    with pytest.raises(RuntimeError, match="boom"), resumed as (again, same):
        assert same == run_id and again.train.run_name == named.train.run_name
        assert mlflow.MlflowClient(uri).get_run(run_id).info.status == "RUNNING"
        raise RuntimeError("boom")
    assert mlflow.MlflowClient(uri).get_run(run_id).info.status == "FAILED"
