"""Challenger and champion on a real MLflow server, scored together by a real Ray Data job.

The models are the tiny image classifier with its head set to always answer one class, and
the validation split is skewed (4 images of class 0, 1 of class 1), so each model's val_top1
is known in advance: 0.8 for "always 0", 0.2 for "always 1".
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow.protos.databricks_pb2 import UNAUTHENTICATED

from perceiver import image_classifier
from perceiver.portable import PortableModel
from pipelines.registry import history
from pipelines.registry.errors import RegistryError
from pipelines.registry.lock import LockTimeout, lock_name, promotion_lock
from pipelines.registry.promotion import promote, rollback, wins
from pipelines.registry.versions import register, version_of_alias
from pipelines.tracking.rank_zero import RankZeroTracker
from pipelines.tracking.runs import end_run, start_run
from tests.pipelines.helpers import tiny_config

TOP1 = {0: 0.8, 1: 0.2}


@pytest.fixture(scope="module")
def skewed_shards(tmp_path_factory, ray_cluster) -> Path:
    from preprocessing.config import ImagePreprocessConfig
    from preprocessing.modalities.image import preprocess_images
    from preprocessing.sample_data.image import write_imagenet_sample

    root = tmp_path_factory.mktemp("skewed")
    sample = write_imagenet_sample(
        root / "raw", num_classes=2, train_per_class=4, val_per_class=4, seed=3
    )
    for n in range(1, 4):
        (root / "raw" / "val" / sample.wnids[1] / f"{sample.wnids[1]}_{n}.JPEG").unlink()
    preprocess_images(root / "raw", root / "shards", ImagePreprocessConfig(rows_per_shard=8))
    return root / "shards"


def biased_run(cfg, uri: str, answer: int) -> str:
    """A logged model that always answers class ``answer``; returns its run id."""
    torch.manual_seed(answer)
    state = image_classifier(cfg.model).state_dict()
    bias = next(k for k in reversed(state) if k.endswith("bias") and state[k].shape == (2,))
    state[bias.removesuffix("bias") + "weight"].zero_()
    state[bias] = torch.tensor([10.0, -10.0] if answer == 0 else [-10.0, 10.0])
    model = PortableModel(cfg.model, state).eval()
    run_id = start_run(cfg, uri, run_name=f"always-{answer}")
    tracker = RankZeroTracker(uri, run_id, system_metrics=0)
    tracker.log_params(cfg)  # config.yaml: promote scores on the challenger's config
    tracker.log_model(model, np.zeros((1, 224, 224, 3), dtype=np.uint8), {"a": 0, "b": 1})
    end_run(uri, run_id)
    return run_id


def test_wins_follows_the_metric_direction_and_margin():
    assert wins(0.8, 0.7, 0.05, higher_is_better=True)
    assert not wins(0.72, 0.7, 0.05, higher_is_better=True)
    assert wins(0.7, 0.7, 0.0, higher_is_better=True)  # a tie wins at margin 0
    assert wins(1.0, 1.5, 0.5, higher_is_better=False)  # val_epe: lower wins
    assert not wins(1.2, 1.0, 0.0, higher_is_better=False)


def test_lineage_replays_promotions_and_rollbacks():
    def move(seq, action, version):
        return history.Move(seq, action, version, None, "", "")

    moves = [move(1, "promote", "1"), move(2, "promote", "2"), move(3, "promote", "4")]
    assert history.lineage(moves) == ["1", "2", "4"]
    assert history.lineage([*moves, move(4, "rollback", "2")]) == ["1", "2"]
    assert history.lineage([*moves, move(4, "rollback", "1")]) == ["1", "2", "1"]


def test_first_champion_worse_refused_better_promoted_margin_and_rollback(
    mlflow_server, skewed_shards, tmp_path
):
    uri, name = mlflow_server, "promotion-test"
    cfg = tiny_config(skewed_shards, tmp_path, num_classes=2)
    client = mlflow.MlflowClient(uri)

    v1 = register(uri, biased_run(cfg, uri, 1), name)
    assert version_of_alias(uri, name, "challenger") == v1
    tags = client.get_model_version(name, v1).tags
    assert {
        "perceiver.run_id",
        "perceiver.data_version",
        "perceiver.data_hash",
        "perceiver.config_hash",
        "perceiver.code_version",
    } <= set(tags)
    first = promote(uri, name)  # the challenger alias, no champion yet
    assert first.promoted and first.champion is None
    assert first.challenger_score == pytest.approx(TOP1[1])

    v2 = register(uri, biased_run(cfg, uri, 0), name)
    better = promote(uri, name)
    assert better.promoted and (better.champion, better.holder) == (v1, v2)
    assert (better.challenger_score, better.champion_score) == pytest.approx((0.8, 0.2))

    v3 = register(uri, biased_run(cfg, uri, 1), name)
    worse = promote(uri, name)
    assert not worse.promoted and worse.holder == v2
    assert "does not win: val_top1 0.2000 vs v2's 0.8000" in worse.reason
    # The decision and both scores, on both versions.
    t3, t2 = (client.get_model_version(name, v).tags for v in (v3, v2))
    assert t3["perceiver.promotion.decision"].startswith("refused: ")
    assert t2["perceiver.defence.decision"].startswith("defended: ")
    assert t2["perceiver.promotion.decision"].startswith("promoted: ")  # how v2 won, kept
    assert (t3["perceiver.promotion.score"], t3["perceiver.promotion.opponent_score"]) == (
        t2["perceiver.defence.opponent_score"],
        t2["perceiver.defence.score"],
    )
    assert t3["perceiver.promotion.opponent"] == v2 and t2["perceiver.defence.opponent"] == v3
    assert t2["perceiver.promotion.opponent"] == v1

    v4 = register(uri, biased_run(cfg, uri, 0), name)  # ties the champion
    assert not promote(uri, name, margin=0.1).promoted
    assert promote(uri, name, margin=0.0).promoted
    assert version_of_alias(uri, name, "champion") == v4

    back = rollback(uri, name, "v4 misbehaves in production")
    assert (back.replaced, back.version) == (v4, v2)
    assert version_of_alias(uri, name, "champion") == v2
    assert "v4 misbehaves" in client.get_model_version(name, v4).tags["perceiver.rolled_back"]
    assert rollback(uri, name, "again").version == v1
    with pytest.raises(ValueError, match="is the first 'champion'"):
        rollback(uri, name, "once more")
    moves = history.moves(client, name, "champion")
    assert [(m.action, m.version, m.replaced) for m in moves] == [
        ("promote", v1, None),
        ("promote", v2, v1),
        ("promote", v4, v2),
        ("rollback", v2, v4),
        ("rollback", v1, v2),
    ]

    mlflow.set_tracking_uri(uri)
    champion = mlflow.pytorch.load_model(f"models:/{name}@champion")
    image = torch.zeros((1, 224, 224, 3), dtype=torch.uint8)
    with torch.no_grad():
        assert champion(image).argmax(-1).item() == 1  # v1 always answers class 1


def test_the_lock_admits_one_holder_and_names_it(mlflow_server):
    client = mlflow.MlflowClient(mlflow_server)
    with promotion_lock(client, "lock-test", "promote v9"):
        assert "promote v9 by" in client.get_registered_model(lock_name("lock-test")).description
        with (
            pytest.raises(LockTimeout, match=r"promote v9 by .* --break-lock"),
            promotion_lock(client, "lock-test", "rollback", timeout=1.0),
        ):
            pass
    with promotion_lock(client, "lock-test", "rollback", timeout=1.0):
        pass  # released: the next holder gets it at once


def test_two_racing_promotes_never_skip_the_champion_they_replace(
    mlflow_server, skewed_shards, tmp_path
):
    """Two real ``promote`` processes, each with a challenger that beats the champion. Each
    move in the history must replace the version the previous move installed, and every
    champion must have been scored against the one it replaced."""
    uri, name = mlflow_server, "race-test"
    cfg = tiny_config(skewed_shards, tmp_path, num_classes=2)
    v1 = register(uri, biased_run(cfg, uri, 1), name)
    promote(uri, name, version=v1)
    challengers = [register(uri, biased_run(cfg, uri, 0), name) for _ in range(2)]
    script = Path(sys.executable).parent / "perceiver-pipeline"
    procs = [
        subprocess.Popen(
            [
                str(script),
                "promote",
                "--model-name",
                name,
                "--version",
                v,
                "--tracking-uri",
                uri,
                "--log-dir",
                str(tmp_path / f"logs-{v}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for v in challengers
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out + err
    client = mlflow.MlflowClient(uri)
    moves = history.moves(client, name, "champion")
    assert moves[0].version == v1
    for before, after in itertools.pairwise(moves):
        assert after.replaced == before.version, moves
        tags = client.get_model_version(name, after.version).tags
        assert tags["perceiver.promotion.opponent"] == before.version, (after, tags)
    assert version_of_alias(uri, name, "champion") == moves[-1].version
    assert {m.version for m in moves[1:]} <= set(challengers)
    with pytest.raises(Exception, match=r"RESOURCE_DOES_NOT_EXIST|not found"):
        client.get_registered_model(lock_name(name))  # released by both


def test_registry_down_is_one_clear_error_and_register_works_once_it_is_back(
    skewed_shards, tmp_path
):
    from tests.pipelines.helpers import run_cli
    from tests.servers import MlflowServer

    server = MlflowServer(tmp_path / "mlflow").start()
    try:
        cfg = tiny_config(skewed_shards, tmp_path, num_classes=2)
        run_id = biased_run(cfg, server.uri, 0)
        server.stop()
        args = ("register", "--run-id", run_id, "--model-name", "down-test")
        down = run_cli(*args, "--tracking-uri", server.uri, timeout=300)
        assert down.returncode == 2, down.stdout + down.stderr
        error = down.stderr.strip().splitlines()[0]
        assert f"the MLflow server at {server.uri} is unreachable" in error
        assert "Nothing recorded so far is lost" in error
        assert f"rerun: perceiver-pipeline register --run-id {run_id}" in error
        assert "Traceback" not in down.stderr
        server.start()  # same port, same store: the run and its model are still there
        back = run_cli(*args, "--tracking-uri", server.uri, timeout=300)
        assert back.returncode == 0, back.stdout + back.stderr
        mv = mlflow.MlflowClient(server.uri).get_model_version("down-test", "1")
        assert mv.run_id == run_id and mv.aliases == ["challenger"]
    finally:
        server.stop()


def test_registry_errors_name_the_problem():
    from pipelines.registry.errors import diagnose, registry_errors

    with (
        pytest.raises(RegistryError, match="requires credentials: set MLFLOW_TRACKING_USER"),
        registry_errors("http://m", "register"),
    ):
        raise mlflow.exceptions.MlflowException("x", error_code=UNAUTHENTICATED)
    assert "permission denied" in diagnose(
        mlflow.exceptions.MlflowException("API request failed with error code 403 != 200"), "u"
    )
