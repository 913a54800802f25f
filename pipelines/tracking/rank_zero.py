"""MLflow logging from inside training, on rank 0 only.

Per optimizer step (every ``log_every_steps``): ``train_loss`` (the mean over the step's
micro-batches and every rank), ``learning_rate``, ``samples_per_second`` and
``input_positions_per_second``. They are buffered and sent in one request every
``flush_seconds`` (and before every checkpoint, see ``flush``): a request per step cost rank 0
5-10 ms, which the other ranks spent waiting at the next collective. Per epoch: the epoch's
training metrics, ``data_wait_fraction`` and the validation metrics. MLflow's system metrics
(CPU, memory, GPU where there is one) are sampled by MLflow's own monitor for the life of the
tracker.

A worker group restarted after a failure recomputes the steps after its last checkpoint; a
step already in the run is not logged again (the tracker starts after the last step it
finds), so the run holds exactly one ``train_loss`` per step.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from pipelines.tracking.runs import MODEL_ARTIFACT, MODEL_URI_TAG, flatten, log_artifact_bytes

STEP_METRIC = "train_loss"


class RankZeroTracker:
    """Logs to one MLflow run; constructed on rank 0 only."""

    def __init__(
        self,
        tracking_uri: str,
        run_id: str,
        system_metrics: float = 10.0,
        flush_seconds: float = 2.0,
    ) -> None:
        """``system_metrics``: MLflow's system-metrics sampling interval in seconds (0: off).
        ``flush_seconds``: how long per-step metrics may wait in the buffer (0: every step)."""
        from mlflow import MlflowClient

        if flush_seconds < 0:
            raise ValueError(f"flush_seconds must be >= 0, got {flush_seconds}")
        self.flush_seconds = flush_seconds
        self.pending: list[Any] = []  # mlflow Metric entities not sent yet
        self.flushed_at = time.monotonic()
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.client = MlflowClient(tracking_uri)
        history = self.client.get_metric_history(run_id, STEP_METRIC)
        self.last_step = max((m.step for m in history), default=0)
        self.steps: list[float] = [m.step for m in history]
        self.losses: list[float] = [m.value for m in history]
        self.monitor: Any = None
        if system_metrics:
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

            self.monitor = SystemMetricsMonitor(
                run_id,
                sampling_interval=system_metrics,
                resume_logging=bool(history),
                tracking_uri=tracking_uri,
            )
            self.monitor.start()

    def close(self) -> None:
        self.flush()
        if self.monitor is not None:
            self.monitor.finish()
            self.monitor = None

    def log_params(self, cfg: Any) -> None:
        from mlflow.entities import Param

        tree = cfg.model_dump(mode="json")
        params = flatten(tree)
        self.client.log_batch(
            self.run_id, params=[Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
        )
        config = yaml.safe_dump(tree, sort_keys=False).encode()
        log_artifact_bytes(self.tracking_uri, self.run_id, "config.yaml", config)

    @staticmethod
    def _metrics(metrics: dict[str, float], step: int) -> list[Any]:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        return [Metric(k, float(v), ts, step) for k, v in metrics.items()]

    def log_step(self, step: int, metrics: dict[str, float]) -> None:
        """Per-step metrics, unless ``step`` is already in the run (a recomputed step)."""
        if step <= self.last_step:
            return
        self.last_step = step
        self.steps.append(step)
        self.losses.append(metrics[STEP_METRIC])
        self.pending.extend(self._metrics(metrics, step))
        if time.monotonic() - self.flushed_at >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Send the buffered step metrics. Called before every checkpoint is saved, so that a
        worker lost later loses only steps after that checkpoint, which the restarted group
        recomputes and logs (the run keeps one ``train_loss`` per step)."""
        self.flushed_at = time.monotonic()
        if self.pending:
            pending, self.pending = self.pending, []
            for start in range(0, len(pending), 1000):  # MLflow's log_batch limit
                self.client.log_batch(self.run_id, metrics=pending[start : start + 1000])

    def log_epoch(self, step: int, metrics: dict[str, float]) -> None:
        self.flush()
        self.client.log_batch(self.run_id, metrics=self._metrics(metrics, step))

    def log_model(self, model: Any, example: Any, label_map: dict[str, int] | None) -> str:
        """Log the model (a ``PortableModel``: pickled as config + weights, with the
        ``perceiver`` package shipped beside it), its label map and loss curve; returns its
        URI. ``example`` is a batch of what the model takes (numpy, or a dict of numpy)."""
        import mlflow
        import numpy as np
        import torch

        import perceiver

        self.flush()
        mlflow.set_tracking_uri(self.tracking_uri)
        tensors = (
            {k: torch.from_numpy(np.array(v)) for k, v in example.items()}
            if isinstance(example, dict)
            else torch.from_numpy(np.array(example))
        )
        with torch.no_grad():
            out = model(tensors)
        outputs = (
            {k: v.float().numpy() for k, v in out.items()}
            if isinstance(out, dict)
            else out.float().numpy()
        )
        signature = mlflow.models.infer_signature(example, outputs)
        torch_version = torch.__version__.split("+")[0]
        with mlflow.start_run(run_id=self.run_id, log_system_metrics=False):
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
            data = json.dumps(label_map, indent=2).encode()
            log_artifact_bytes(self.tracking_uri, self.run_id, "label_map.json", data)
        if self.steps:
            from pipelines.figures import line_plot_png

            png = line_plot_png(
                self.steps, {"train loss": self.losses}, "optimizer step", "Training loss"
            )
            log_artifact_bytes(self.tracking_uri, self.run_id, "train_loss.png", png)
        return str(info.model_uri)
