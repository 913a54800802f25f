"""MLflow tracking: where runs go, the driver's run bookkeeping, and rank 0's logger.

The tracking URI is, in order: the config's ``tracking.tracking_uri``, the conventional
``MLFLOW_TRACKING_URI`` variable, else MLflow's own default (a ``mlflow.db`` sqlite file in
the working directory). A relative sqlite or file path is made absolute here, in the driver,
so Ray workers, whose working directory differs, write to the same store.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from pipelines.config import PipelineConfig

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


def start_run(cfg: PipelineConfig, tracking_uri: str, run_name: str | None = None) -> str:
    """Create the pipeline's MLflow run (driver side) and return its id."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(cfg.tracking.experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(cfg.tracking.experiment)
    run = client.create_run(
        exp_id,
        run_name=run_name,
        tags={"perceiver.task": cfg.model.task, "perceiver.pipeline": "image_classification"},
    )
    return run.info.run_id


def end_run(tracking_uri: str, run_id: str, status: str = "FINISHED") -> None:
    from mlflow import MlflowClient

    MlflowClient(tracking_uri).set_terminated(run_id, status=status)


def log_artifact_bytes(tracking_uri: str, run_id: str, name: str, data: bytes) -> None:
    import tempfile

    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(data)
        MlflowClient(tracking_uri).log_artifact(run_id, str(path))


class RankZeroTracker:
    """MLflow logging from the training loop; constructed on rank 0 only."""

    def __init__(self, tracking_uri: str, run_id: str) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.client = MlflowClient(tracking_uri)
        self.steps: list[float] = []
        self.losses: list[float] = []

    def log_params(self, cfg: PipelineConfig) -> None:
        from mlflow.entities import Param

        params = flatten(cfg.model_dump(mode="json"))
        self.client.log_batch(
            self.run_id, params=[Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
        )
        log_artifact_bytes(
            self.tracking_uri,
            self.run_id,
            "config.yaml",
            yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False).encode(),
        )

    def log_step(self, step: int, loss: float, lr: float, epoch: int) -> None:
        from mlflow.entities import Metric

        self.steps.append(step)
        self.losses.append(loss)
        ts = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id,
            metrics=[
                Metric("train_step_loss", loss, ts, step),
                Metric("learning_rate", lr, ts, step),
                Metric("epoch", float(epoch), ts, step),
            ],
        )

    def log_epoch(self, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        step = int(metrics["global_step"])
        self.client.log_batch(
            self.run_id,
            metrics=[
                Metric(k, float(v), ts, step)
                for k, v in metrics.items()
                if k not in ("epoch", "global_step")
            ],
        )

    def log_model(
        self, model: Any, cfg: PipelineConfig, label_map: dict[str, int] | None = None
    ) -> str:
        """Log the model (a ``PortableModel``: pickled as config + weights, with the ``perceiver``
        package shipped beside it) and its pictures; returns the model URI."""
        import mlflow
        import numpy as np
        import torch

        import perceiver

        mlflow.set_tracking_uri(self.tracking_uri)
        example = np.zeros((1, *cfg.model.image_shape), dtype=np.uint8)
        with torch.no_grad():
            out = model(torch.from_numpy(example)).numpy()
        signature = mlflow.models.infer_signature(example, out)
        torch_version = torch.__version__.split("+")[0]
        with mlflow.start_run(run_id=self.run_id):
            info = mlflow.pytorch.log_model(
                model,
                name=MODEL_ARTIFACT,
                serialization_format="pickle",
                signature=signature,
                code_paths=[str(Path(perceiver.__file__).parent)],
                pip_requirements=[f"torch=={torch_version}", "einops", "pydantic>=2", "numpy"],
            )
        self.client.set_tag(self.run_id, MODEL_URI_TAG, info.model_uri)
        if label_map is not None:
            log_artifact_bytes(
                self.tracking_uri,
                self.run_id,
                "label_map.json",
                json.dumps(label_map, indent=2).encode(),
            )
        if self.steps:
            from pipelines.figures import line_plot_png

            png = line_plot_png(
                self.steps, {"train loss": self.losses}, "optimizer step", "Training loss"
            )
            log_artifact_bytes(self.tracking_uri, self.run_id, "train_loss.png", png)
        return info.model_uri


def model_uri_of_run(tracking_uri: str, run_id: str) -> str:
    """The URI of the model a pipeline run logged (falls back to ``runs:/<id>/model``)."""
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri).get_run(run_id)
    return run.data.tags.get(MODEL_URI_TAG, f"runs:/{run_id}/{MODEL_ARTIFACT}")
