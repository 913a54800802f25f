"""MLflow runs: where they go, and the driver's bookkeeping of the pipeline's run.

The tracking URI is, in order: the config's ``tracking.tracking_uri``, the conventional
``MLFLOW_TRACKING_URI`` variable, else MLflow's own default (a ``mlflow.db`` sqlite file in
the working directory). A relative sqlite or file path is made absolute here, in the driver,
so Ray workers, whose working directory differs, write to the same store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MODEL_ARTIFACT = "model"
MODEL_URI_TAG = "perceiver.model_uri"


def absolute_store_uri(uri: str) -> str:
    """Make a relative ``sqlite:///rel.db`` or plain path absolute; leave others alone."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///") :]).resolve())
    if "://" not in uri and not uri.startswith("databricks"):
        return str(Path(uri).resolve())
    return uri


def resolve_tracking_uri(configured: str | None = None) -> str:
    import mlflow

    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()
    return absolute_store_uri(uri)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def start_run(
    cfg: Any, tracking_uri: str, run_name: str | None = None, tags: dict[str, str] | None = None
) -> str:
    """Create the pipeline's MLflow run (driver side), tagged with its task and what it is
    made from (``pipelines.tracking.provenance``), and return its id."""
    from mlflow import MlflowClient

    from pipelines.tracking.provenance import run_tags

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(cfg.tracking.experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(cfg.tracking.experiment)
    run = client.create_run(
        exp_id,
        run_name=run_name,
        tags={
            "perceiver.task": cfg.task,
            "perceiver.model": cfg.model.task,
            **run_tags(cfg),
            **(tags or {}),
        },
    )
    return run.info.run_id


def end_run(tracking_uri: str, run_id: str, status: str = "FINISHED") -> None:
    from mlflow import MlflowClient

    MlflowClient(tracking_uri).set_terminated(run_id, status=status)


def run_name_for(cfg: Any) -> str:
    """The run's name: ``train.run_name``, else the task and the time."""
    return str(cfg.train.run_name or f"{cfg.task}-{datetime.now(UTC):%Y%m%d-%H%M%S}")


@contextmanager
def tracked_run(
    cfg: Any, tracking_uri: str, run_id: str | None = None, tags: dict[str, str] | None = None
) -> Iterator[tuple[Any, str]]:
    """The pipeline's MLflow run around a block of work; yields ``(cfg, run_id)``.

    The run is named once (``run_name_for``) and the name pinned in the yielded config, so Ray
    Train's run and MLflow's share it. Given ``run_id`` (a resumed run), that run is marked
    running again instead of a new one being started. It ends FAILED if the block raises,
    FINISHED otherwise."""
    from mlflow import MlflowClient

    name = run_name_for(cfg)
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"run_name": name})})
    if run_id is None:
        run_id = start_run(cfg, tracking_uri, run_name=name, tags=tags)
    else:
        MlflowClient(tracking_uri).update_run(run_id, status="RUNNING")
    try:
        yield cfg, run_id
    except BaseException:
        end_run(tracking_uri, run_id, "FAILED")
        raise
    end_run(tracking_uri, run_id)


def log_artifact_bytes(tracking_uri: str, run_id: str, name: str, data: bytes) -> None:
    import tempfile

    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(data)
        MlflowClient(tracking_uri).log_artifact(run_id, str(path))


def model_uri_of_run(tracking_uri: str, run_id: str) -> str:
    """The URI of the model a pipeline run logged (falls back to ``runs:/<id>/model``)."""
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri).get_run(run_id)
    return run.data.tags.get(MODEL_URI_TAG, f"runs:/{run_id}/{MODEL_ARTIFACT}")
