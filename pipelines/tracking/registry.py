"""MLflow Model Registry: register a run's model, and promote it behind an alias.

Promotion rule: the alias (``champion`` by default) moves to the new version only if its
task's metric is at least as good as the current holder's, in the metric's direction (a
higher ``val_top1``, a lower ``val_epe``). A version without the metric is never promoted.
Each decision is written on the version as tags, so the registry itself records why an alias
did or did not move.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.tracking.runs import model_uri_of_run


@dataclass
class Promotion:
    model_name: str
    alias: str
    version: str
    promoted: bool
    metric: str
    value: float
    previous_version: str | None
    previous_value: float | None
    reason: str

    @property
    def holder(self) -> str | None:
        """The version holding the alias after the decision."""
        return self.version if self.promoted else self.previous_version


def register(tracking_uri: str, run_id: str, model_name: str) -> str:
    """Register the model logged by ``run_id`` under ``model_name``; returns the version."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mv = mlflow.register_model(model_uri_of_run(tracking_uri, run_id), model_name)
    from mlflow import MlflowClient

    MlflowClient(tracking_uri).set_model_version_tag(model_name, mv.version, "run_id", run_id)
    return str(mv.version)


def task_of_version(tracking_uri: str, model_name: str, version: str) -> str:
    """The task of the run a version was registered from (its ``perceiver.task`` tag)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    mv = client.get_model_version(model_name, version)
    task = client.get_run(mv.run_id).data.tags.get("perceiver.task") if mv.run_id else None
    if not task:
        raise ValueError(
            f"{model_name} version {version} comes from a run without a perceiver.task tag"
        )
    return str(task)


def _metric_of_version(client, model_name: str, version: str, metric: str) -> float | None:
    mv = client.get_model_version(model_name, version)
    if not mv.run_id:
        return None
    value = client.get_run(mv.run_id).data.metrics.get(metric)
    return None if value is None else float(value)


def promote(
    tracking_uri: str,
    model_name: str,
    version: str,
    alias: str = "champion",
    metric: str = "val_top1",
    higher_is_better: bool = True,
) -> Promotion:
    """Move ``alias`` to ``version`` if its ``metric`` is at least as good as the holder's."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri)
    value = _metric_of_version(client, model_name, version, metric)
    if value is None:
        raise ValueError(
            f"{model_name} version {version} has no metric {metric!r} on its run: "
            "run 'perceiver-pipeline evaluate' first"
        )
    try:
        current = client.get_model_version_by_alias(model_name, alias)
        prev_version: str | None = str(current.version)
    except MlflowException:
        prev_version = None
    prev_value = (
        _metric_of_version(client, model_name, prev_version, metric) if prev_version else None
    )
    if prev_version is None:
        promoted, reason = True, f"no version held '{alias}'"
    elif prev_version == version:
        promoted, reason = True, f"version {version} already holds '{alias}'"
    elif prev_value is None or (value >= prev_value if higher_is_better else value <= prev_value):
        promoted = True
        sign = ">=" if higher_is_better else "<="
        reason = f"{metric} {value:.4f} {sign} {prev_value if prev_value is not None else 'n/a'}"
    else:
        promoted = False
        sign = "<" if higher_is_better else ">"
        reason = f"{metric} {value:.4f} {sign} champion v{prev_version}'s {prev_value:.4f}"
    if promoted:
        client.set_registered_model_alias(model_name, alias, version)
    client.set_model_version_tag(model_name, version, f"{alias}_decision", reason)
    client.set_model_version_tag(model_name, version, metric, f"{value:.6f}")
    return Promotion(
        model_name=model_name,
        alias=alias,
        version=version,
        promoted=promoted,
        metric=metric,
        value=value,
        previous_version=prev_version,
        previous_value=prev_value,
        reason=reason,
    )
