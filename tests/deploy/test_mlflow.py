"""deploy/mlflow: the MLflow server's objects and wiring, and a real ``mlflow server`` started
with the Deployment's own arguments and basic-auth configuration (on 127.0.0.1, with sqlite
and a local folder standing in for PostgreSQL and S3, which are not available here)."""

from __future__ import annotations

import base64
import configparser
import importlib.util
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import manifests as mf

MLFLOW = mf.load(mf.MLFLOW)
KUBERAY = mf.load(mf.KUBERAY)
PIPELINE_SECRET = "perceiver-mlflow-pipeline"


@pytest.fixture
def basic_auth_app() -> None:
    """The basic-auth app imports Flask-WTF, which only mlflow's `auth` extra installs."""
    if importlib.util.find_spec("flask_wtf") is None:
        pytest.fail(
            "mlflow's basic-auth app needs Flask-WTF (the mlflow[auth] extra, which "
            "deploy/Dockerfile installs): add mlflow[auth] to the dev extras of pyproject.toml"
        )


def _container() -> dict[str, Any]:
    (container,) = mf.one(MLFLOW, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def _args() -> dict[str, str]:
    c = _container()
    assert c["command"] == ["mlflow", "server"]
    return dict(arg.partition("=")[::2] for arg in c["args"])


def _env() -> dict[str, dict[str, Any]]:
    return mf.env_of(_container())


def _secret_ref(entry: dict[str, Any]) -> tuple[str, str]:
    ref = entry["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def _auth_ini() -> configparser.SectionProxy:
    config_map = mf.one(MLFLOW, "ConfigMap")
    ini = configparser.ConfigParser()
    ini.read_string(config_map["data"]["basic_auth.ini"])
    return ini["mlflow"]


def test_mlflow_objects() -> None:
    kinds = {m.doc["kind"]: m.doc["apiVersion"] for m in MLFLOW}
    assert kinds == {
        "Deployment": "apps/v1",
        "Service": "v1",
        "ConfigMap": "v1",
        "NetworkPolicy": "networking.k8s.io/v1",
    }
    assert not mf.of_kind(MLFLOW, "PersistentVolumeClaim")  # state is in PostgreSQL and S3


def test_deployment_selects_its_pods_and_mounts_the_auth_config() -> None:
    spec = mf.one(MLFLOW, "Deployment")["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    mounts = {vm["name"]: vm["mountPath"] for vm in _container()["volumeMounts"]}
    config_map = mf.one(MLFLOW, "ConfigMap")
    (name,) = [n for n, v in volumes.items() if "configMap" in v]
    assert volumes[name]["configMap"]["name"] == mf.name_of(config_map)
    (key,) = config_map["data"]
    assert _env()["MLFLOW_AUTH_CONFIG_PATH"]["value"] == f"{mounts[name]}/{key}"


def test_service_targets_the_container_port() -> None:
    service = mf.one(MLFLOW, "Service")
    labels = mf.one(MLFLOW, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    ports = {p["name"]: p["containerPort"] for p in _container()["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports or port["targetPort"] in ports.values()
    assert int(_args()["--port"]) in ports.values()


def test_server_uses_postgres_s3_and_basic_auth_with_credentials_from_secrets() -> None:
    args, env = _args(), _env()
    assert args["--host"] == "0.0.0.0"
    assert args["--app-name"] == "basic-auth"
    assert args["--backend-store-uri"] == "$(MLFLOW_BACKEND_STORE_URI)"
    assert args["--artifacts-destination"] == "$(MLFLOW_ARTIFACTS_DESTINATION)"
    backend = urllib.parse.urlsplit(env["MLFLOW_BACKEND_STORE_URI"]["value"])
    assert backend.scheme == "postgresql" and backend.username and backend.password is None
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["value"].startswith("s3://")
    assert env["MLFLOW_S3_ENDPOINT_URL"]["value"].startswith("https://")
    secret_refs = {
        "PGPASSWORD": ("mlflow-postgres", "password"),
        "AWS_ACCESS_KEY_ID": ("mlflow-s3", "access_key_id"),
        "AWS_SECRET_ACCESS_KEY": ("mlflow-s3", "secret_access_key"),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ("mlflow-auth", "admin_password"),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": ("mlflow-auth", "flask_secret_key"),
    }
    for name, ref in secret_refs.items():
        assert _secret_ref(env[name]) == ref, name
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert _container()[probe]["httpGet"]["path"] == "/health", probe


def test_auth_config_is_read_by_mlflow_and_holds_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, basic_auth_app: None
) -> None:
    from mlflow.server.auth.config import read_auth_config
    from mlflow.server.auth.permissions import ALL_PERMISSIONS

    ini = _auth_ini()
    assert "admin_password" not in ini  # from MLFLOW_AUTH_ADMIN_PASSWORD (a Secret)
    uri = urllib.parse.urlsplit(ini["database_uri"])
    assert uri.scheme == "postgresql" and uri.password is None  # PGPASSWORD (a Secret)
    assert uri.path == "/mlflow_auth"  # not the tracking store's database
    backend = urllib.parse.urlsplit(_env()["MLFLOW_BACKEND_STORE_URI"]["value"])
    assert (uri.hostname, uri.username) == (backend.hostname, backend.username)  # one PGPASSWORD
    path = tmp_path / "basic_auth.ini"
    path.write_text(mf.one(MLFLOW, "ConfigMap")["data"]["basic_auth.ini"])
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(path))
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_USERNAME", raising=False)
    config = read_auth_config()
    assert config.database_uri == ini["database_uri"]
    assert config.admin_username == "admin" and config.admin_password is None
    assert config.default_permission == "NO_PERMISSIONS" in ALL_PERMISSIONS
    assert config.auth_cache_ttl_seconds > 0  # else a password hash per request


def test_ray_pods_reach_mlflow_through_its_service_as_the_pipeline_user() -> None:
    service = mf.one(MLFLOW, "Service")
    (port,) = service["spec"]["ports"]
    uri = f"http://{mf.name_of(service)}:{port['port']}"
    assert f"{mf.name_of(service)}:{port['port']}" in _args()["--allowed-hosts"].split(",")
    users = 0
    for m in KUBERAY:
        for where, pod in mf.pod_specs(m.doc):
            for c in mf.containers(pod):
                env = mf.env_of(c)
                if "MLFLOW_TRACKING_URI" not in env:
                    assert m.doc["kind"] == "RayCronJob", (m.label, where)  # preprocessing only
                    continue
                assert env["MLFLOW_TRACKING_URI"]["value"] == uri, (m.label, where)
                assert _secret_ref(env["MLFLOW_TRACKING_USERNAME"]) == (PIPELINE_SECRET, "username")
                assert _secret_ref(env["MLFLOW_TRACKING_PASSWORD"]) == (PIPELINE_SECRET, "password")
                users += 1
    assert users >= 7  # RayCluster 3 groups, RayJob 3 groups, the CronJob


# --- a real server ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(
    url: str,
    host: str,
    user: tuple[str, str] | None = None,
    method: str = "GET",
    body: dict[str, Any] | None = None,
) -> int:
    headers = {"Host": host, "Content-Type": "application/json"}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(user).encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _start_server(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, tuple[str, str]]:
    """The Deployment's command and args, with local stand-ins for PostgreSQL and S3, the
    ConfigMap's auth config (its database on sqlite), fresh values for every Secret-backed
    env var, on 127.0.0.1, 2 workers (the machine has 2 cores), cwd a temp dir."""
    c = _container()
    port = _free_port()
    local = {
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts"),
        "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "basic_auth.ini"),
    }
    ini = configparser.ConfigParser()
    ini.read_dict({"mlflow": dict(_auth_ini())})
    ini["mlflow"]["database_uri"] = f"sqlite:///{tmp_path / 'basic_auth.db'}"
    with open(local["MLFLOW_AUTH_CONFIG_PATH"], "w") as f:
        ini.write(f)
    values = {e["name"]: e["value"] for e in c["env"] if "value" in e} | local
    from_secrets = {e["name"]: secrets.token_urlsafe(24) for e in c["env"] if "valueFrom" in e}
    assert len(from_secrets["MLFLOW_AUTH_ADMIN_PASSWORD"]) >= 12  # MLflow's minimum
    args = []
    for arg in c["args"]:
        arg = re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], arg)
        arg = arg.replace("--host=0.0.0.0", "--host=127.0.0.1")
        arg = re.sub(r"^--port=\d+$", f"--port={port}", arg)
        arg = re.sub(r"^--workers=\d+$", "--workers=2", arg)
        args.append(arg)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_", "PG"))}
    env |= values | from_secrets
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / c["command"][0]), *c["command"][1:], *args],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    admin = (_auth_ini()["admin_username"], from_secrets["MLFLOW_AUTH_ADMIN_PASSWORD"])
    return proc, f"http://127.0.0.1:{port}", admin


def _wait_healthy(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited: {log.read_text()}")
        try:
            if _call(f"{base}/health", base.split("//")[1]) == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"no answer in 180 s: {log.read_text()}")
        time.sleep(0.5)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (this test started it in a new session)."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


def test_mlflow_server_starts_with_the_deployment_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, basic_auth_app: None
) -> None:
    """/health answers without a user (kubelet probes), the API wants one (401), the admin
    from MLFLOW_AUTH_ADMIN_PASSWORD gets in, only allowed Host headers are served, and the
    read-only user recipe of docs/deploy.md works: READ on one registered model, nothing else."""
    proc, base, admin = _start_server(tmp_path)
    try:
        _wait_healthy(proc, base, tmp_path / "server.log")
        api = f"{base}/api/2.0/mlflow"
        search = f"{api}/experiments/search?max_results=1"
        assert _call(search, "mlflow:5000") == 401
        assert _call(search, "mlflow:5000", (admin[0], admin[1] + "x")) == 401
        assert _call(search, "mlflow:5000", admin) == 200
        assert _call(search, "evil.example:5000", admin) == 403  # --allowed-hosts
        assert _call(f"{base}/health", "evil.example:5000") == 200  # kubelet probes by pod IP
        assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "basic_auth.db").is_file()

        # docs/deploy.md: a read-only user with READ on the registered model perceiver-image.
        host = base.split("//")[1]
        for model in ("perceiver-image", "other-model"):
            create = f"{api}/registered-models/create"
            assert _call(create, host, admin, "POST", {"name": model}) == 200
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", admin[0])
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", admin[1])
        from mlflow.server import get_app_client

        auth = get_app_client("basic-auth", tracking_uri=base)
        reader = ("reader", secrets.token_urlsafe(16))
        auth.create_user(username=reader[0], password=reader[1])
        auth.grant_user_permission(reader[0], "registered_model", "perceiver-image", "READ")
        get = f"{api}/registered-models/get?name="
        assert _call(get + "perceiver-image", host, reader) == 200
        assert _call(get + "other-model", host, reader) == 403
        update = f"{api}/registered-models/update"
        body = {"name": "perceiver-image", "description": "x"}
        assert _call(update, host, reader, "PATCH", body) == 403
        assert _call(update, host, admin, "PATCH", body) == 200
    finally:
        _stop(proc)
