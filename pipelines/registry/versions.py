"""Registering a training run's model, and looking versions up by alias.

A new version gets the alias ``challenger`` and tags saying what made it: the training run,
the data manifest version and hash, the config hash and the code version (copied from the
run, which ``pipelines.tracking.runs.start_run`` tagged when training began).
"""

from __future__ import annotations

from typing import Any

from pipelines.tracking.provenance import TAG_CODE, TAG_CONFIG, TAG_DATA_HASH, TAG_DATA_VERSION
from pipelines.tracking.runs import model_uri_of_run

CHALLENGER = "challenger"
CHAMPION = "champion"
TAG_RUN = "perceiver.run_id"
TAG_TASK = "perceiver.task"
PROVENANCE_TAGS = (TAG_TASK, TAG_DATA_VERSION, TAG_DATA_HASH, TAG_CONFIG, TAG_CODE)


def client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri)


def register(
    tracking_uri: str, run_id: str, model_name: str, alias: str | None = CHALLENGER
) -> str:
    """Register the model logged by ``run_id`` as a new version of ``model_name``, set
    ``alias`` on it, tag it with its provenance; return the version."""
    import mlflow

    c = client(tracking_uri)
    run_tags = c.get_run(run_id).data.tags
    tags = {TAG_RUN: run_id, **{k: run_tags[k] for k in PROVENANCE_TAGS if k in run_tags}}
    mlflow.set_tracking_uri(tracking_uri)
    mv = mlflow.register_model(model_uri_of_run(tracking_uri, run_id), model_name, tags=tags)
    version = str(mv.version)
    if alias:
        c.set_registered_model_alias(model_name, alias, version)
    return version


def version_of_alias(tracking_uri: str, model_name: str, alias: str) -> str | None:
    """The version ``alias`` points to, or None if it points nowhere."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client(tracking_uri).get_model_version_by_alias(model_name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def run_of_version(tracking_uri: str, model_name: str, version: str) -> str:
    mv = client(tracking_uri).get_model_version(model_name, version)
    if not mv.run_id:
        raise ValueError(f"{model_name} version {version} was not registered from a run")
    return str(mv.run_id)


def task_of_version(tracking_uri: str, model_name: str, version: str) -> str:
    """The task of the run a version was registered from (its ``perceiver.task`` tag)."""
    c = client(tracking_uri)
    run_id = run_of_version(tracking_uri, model_name, version)
    task = c.get_run(run_id).data.tags.get(TAG_TASK)
    if not task:
        raise ValueError(
            f"{model_name} version {version} comes from a run without a {TAG_TASK} tag"
        )
    return str(task)


def set_version_tags(tracking_uri: str, model_name: str, version: str, tags: dict) -> None:
    c = client(tracking_uri)
    for key, value in tags.items():
        c.set_model_version_tag(model_name, version, key, str(value))
