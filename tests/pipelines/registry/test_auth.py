"""MLflow with ``--app-name basic-auth``, tried for real: a server started with its secret key
and admin password from the environment refuses anonymous requests, the whole chain runs
with ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (its Ray workers included),
and a user granted only READ loads the champion but cannot move an alias."""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pytest
import torch
import yaml
from mlflow.exceptions import MlflowException

from tests.pipelines.helpers import run_cli, tiny_config
from tests.servers import MlflowServer

# As deploy/mlflow/auth-config.yaml, with sqlite for PostgreSQL: nobody sees what it was not
# granted; a 60 s cache of checked passwords (scrypt on every request is slow).
AUTH_INI = """\
[mlflow]
default_permission = NO_PERMISSIONS
database_uri = sqlite:///basic_auth.db
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 60
"""


@pytest.fixture
def auth_server(tmp_path):
    admin = secrets.token_urlsafe(18)  # >= 12 characters, never in a file
    root = tmp_path / "mlflow"
    root.mkdir()
    (root / "basic_auth.ini").write_text(AUTH_INI)
    env = {
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32),
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin,
        "MLFLOW_AUTH_CONFIG_PATH": str(root / "basic_auth.ini"),
    }
    with MlflowServer(root, app_name="basic-auth", env=env) as server:
        yield server.uri, admin


def as_user(monkeypatch, name: str, password: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", name)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def test_basic_auth_refuses_anonymous_runs_the_chain_and_enforces_read_only(
    auth_server, toy_shards, tmp_path, monkeypatch, ray_cluster
):
    uri, admin = auth_server
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1")
    assert err.value.code == 401

    # No credentials: one clear line from the CLI, exit 2.
    anonymous = run_cli(
        "register",
        "--run-id",
        "x",
        "--tracking-uri",
        uri,
        drop=("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"),
    )
    assert anonymous.returncode == 2
    assert "requires credentials: set MLFLOW_TRACKING_USERNAME" in anonymous.stderr

    # The whole chain as the admin: train (Ray workers log to MLflow), evaluate, register,
    # promote.
    cfg = tiny_config(toy_shards, tmp_path / "ray", num_classes=2, train={"epochs": 1})
    tree = cfg.model_dump(mode="json")
    tree["tracking"] = {"tracking_uri": uri, "experiment": "auth", "model_name": "auth-model"}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(tree))
    creds = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": admin}
    chain = run_cli("run", "--config", str(tmp_path / "cfg.yaml"), env=creds, timeout=900)
    assert chain.returncode == 0, chain.stdout[-3000:] + chain.stderr[-3000:]
    assert "'champion' moved to version 1" in chain.stdout

    as_user(monkeypatch, "admin", admin)
    client = mlflow.MlflowClient(uri)
    run = client.get_run(client.get_model_version_by_alias("auth-model", "champion").run_id)
    assert {"train_loss", "val_top1"} <= set(run.data.metrics)  # rank 0 logged, with creds
    from mlflow.server import get_app_client

    users = get_app_client("basic-auth", tracking_uri=uri)
    reader_password = secrets.token_urlsafe(18)
    users.create_user("reader", reader_password)
    # READ on the model, and on the experiment that holds its artefacts (MLflow checks
    # artefact downloads against the experiment).
    users.grant_user_permission("reader", "registered_model", "auth-model", "READ")
    users.grant_user_permission("reader", "experiment", run.info.experiment_id, "READ")

    as_user(monkeypatch, "reader", reader_password)
    mlflow.set_tracking_uri(uri)
    model = mlflow.pytorch.load_model("models:/auth-model@champion")
    with torch.no_grad():
        assert model(torch.from_numpy(np.zeros((1, 224, 224, 3), np.uint8))).shape == (1, 2)
    with pytest.raises(MlflowException) as refused:
        mlflow.MlflowClient(uri).set_registered_model_alias("auth-model", "champion", "1")
    assert refused.value.error_code == "PERMISSION_DENIED"
    reader = {"MLFLOW_TRACKING_USERNAME": "reader", "MLFLOW_TRACKING_PASSWORD": reader_password}
    denied = run_cli(
        "register",
        "--run-id",
        run.info.run_id,
        "--model-name",
        "auth-model",
        "--tracking-uri",
        uri,
        env=reader,
    )
    assert denied.returncode == 2
    assert "refused the request (permission denied for this user)" in denied.stderr
    assert reader_password not in denied.stdout + denied.stderr
