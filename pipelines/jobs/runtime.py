"""What a submitted job carries: the project's code, MLflow's settings, and its command.

From a checkout (a folder with ``pyproject.toml`` above the packages), the job's
``working_dir`` is that folder, less what is not code: the virtualenv, data, shards, demo
output, MLflow stores, logs and caches. An installed package (the container image) sends no
code: the cluster runs the version it has. ``MLFLOW_TRACKING_URI`` and MLflow's credential
variables go along as the job's environment, so the job logs where the submitter does.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pipelines

PROJECT_ROOT = Path(pipelines.__file__).resolve().parents[1]
EXCLUDES = [
    ".git",
    ".venv",
    "venv",
    "demo-output",
    "perceiver-logs",
    "mlflow.db",
    "mlruns",
    "mlartifacts",
    "data",
    "shards",
    "raw",
    "*.parquet",
    "*.safetensors",
    "*.pt",
    "**/__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "*.egg-info",
    "tests/perceiver/legacy",
]
# Forwarded when set: where MLflow is, and how to authenticate to it and its artefact store.
FORWARDED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
)
# The commands a job may run.
SUBMITTABLE = (
    "preprocess",
    "train",
    "evaluate",
    "register",
    "promote",
    "rollback",
    "run",
    "workflow",
)


def is_checkout(root: Path = PROJECT_ROOT) -> bool:
    return (root / "pyproject.toml").is_file() and (root / "pipelines").is_dir()


def runtime_env(code: bool = True) -> dict[str, Any]:
    env: dict[str, Any] = {
        "env_vars": {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}
    }
    if code and is_checkout():
        env["working_dir"] = str(PROJECT_ROOT)
        env["excludes"] = EXCLUDES
    return env


def entrypoint(command: Sequence[str]) -> str:
    """The job's shell command: the CLI with the engines' output left in the job's log."""
    if not command:
        raise ValueError("give the command to submit after --, e.g. -- train --config c.yaml")
    if command[0] not in SUBMITTABLE:
        raise ValueError(
            f"'{command[0]}' cannot be submitted; submit one of: {', '.join(SUBMITTABLE)}"
        )
    return shlex.join(["python", "-m", "pipelines.cli", command[0], "--verbose", *command[1:]])
