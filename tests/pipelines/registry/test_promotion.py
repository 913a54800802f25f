"""Register and promote on a real MLflow server; champion never moves to a worse model."""

import mlflow
import numpy as np
import pytest
import torch

from perceiver import image_classifier
from perceiver.portable import PortableModel
from pipelines.tracking.rank_zero import RankZeroTracker
from pipelines.tracking.registry import promote, register
from pipelines.tracking.runs import end_run, start_run
from tests.pipelines.helpers import tiny_config


def logged_run(cfg, uri, seed, val_top1):
    torch.manual_seed(seed)
    model = PortableModel(cfg.model, image_classifier(cfg.model).state_dict()).eval()
    run_id = start_run(cfg, uri, run_name=f"seed{seed}")
    example = np.zeros((1, 224, 224, 3), dtype=np.uint8)
    tracker = RankZeroTracker(uri, run_id, system_metrics=0)
    tracker.log_model(model, example, {"a": 0, "b": 1})
    if val_top1 is not None:
        mlflow.MlflowClient(uri).log_metric(run_id, "val_top1", val_top1)
    end_run(uri, run_id)
    return run_id, model


def test_promotion_never_moves_champion_to_a_worse_model(mlflow_server, tmp_path):
    cfg = tiny_config(tmp_path, tmp_path, num_classes=2)
    name = "registry-test-model"
    run1, _ = logged_run(cfg, mlflow_server, 1, 0.6)
    run2, _ = logged_run(cfg, mlflow_server, 2, 0.4)
    run3, model3 = logged_run(cfg, mlflow_server, 3, 0.6)
    run4, _ = logged_run(cfg, mlflow_server, 4, None)

    v1 = register(mlflow_server, run1, name)
    first = promote(mlflow_server, name, v1)
    assert first.promoted and first.previous_version is None

    v2 = register(mlflow_server, run2, name)
    worse = promote(mlflow_server, name, v2)
    assert not worse.promoted and worse.holder == v1
    assert "0.4000 < champion" in worse.reason

    v3 = register(mlflow_server, run3, name)
    tie = promote(mlflow_server, name, v3)  # "at least the current champion's"
    assert tie.promoted and tie.previous_version == v1

    client = mlflow.MlflowClient(mlflow_server)
    assert client.get_model_version_by_alias(name, "champion").version == v3
    assert client.get_model_version(name, v2).tags["champion_decision"] == worse.reason

    v4 = register(mlflow_server, run4, name)
    with pytest.raises(ValueError, match="has no metric 'val_top1'"):
        promote(mlflow_server, name, v4)
    assert client.get_model_version_by_alias(name, "champion").version == v3

    # The champion loads back by alias and predicts on a 224x224 image array.
    mlflow.set_tracking_uri(mlflow_server)
    champion = mlflow.pytorch.load_model(f"models:/{name}@champion")
    image = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    with torch.no_grad():
        out = champion(torch.from_numpy(image)[None])
        torch.testing.assert_close(out, model3(torch.from_numpy(image)[None]))
    assert out.shape == (1, 2)


def test_a_lower_is_better_metric_promotes_the_lower_value(mlflow_server, tmp_path):
    """val_epe: the challenger with the smaller error wins; a larger one does not."""
    cfg = tiny_config(tmp_path, tmp_path, num_classes=2)
    name = "registry-lower-test"
    versions = []
    for seed, epe in ((5, 2.0), (6, 3.0), (7, 1.5)):
        run_id, _ = logged_run(cfg, mlflow_server, seed, None)
        mlflow.MlflowClient(mlflow_server).log_metric(run_id, "val_epe", epe)
        versions.append(register(mlflow_server, run_id, name))
    kwargs = {"metric": "val_epe", "higher_is_better": False}
    assert promote(mlflow_server, name, versions[0], **kwargs).promoted
    worse = promote(mlflow_server, name, versions[1], **kwargs)
    assert not worse.promoted and "3.0000 > champion" in worse.reason
    better = promote(mlflow_server, name, versions[2], **kwargs)
    assert better.promoted and "1.5000 <= 2.0" in better.reason
