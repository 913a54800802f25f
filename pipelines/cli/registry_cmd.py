"""The registry commands: ``register`` and ``promote``."""

from __future__ import annotations

import argparse

from pipelines.console import console


def add_tracking_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")


def add_register_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-id", required=True, help="MLflow run whose logged model to register")
    p.add_argument(
        "--model-name", default=None, help="registered model (default: perceiver-<task of the run>)"
    )
    add_tracking_arg(p)


def add_promote_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-name", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--alias", default="champion")
    add_tracking_arg(p)


def run_register(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from pipelines.tracking.registry import register
    from pipelines.tracking.runs import resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    name = args.model_name
    if name is None:
        task = MlflowClient(uri).get_run(args.run_id).data.tags.get("perceiver.task", "model")
        name = f"perceiver-{task}"
    version = register(uri, args.run_id, name)
    console().say(f"registered {name} version {version} from run {args.run_id}")
    return 0


def run_promote(args: argparse.Namespace) -> int:
    from pipelines.tasks import TASKS
    from pipelines.tracking.registry import promote, task_of_version
    from pipelines.tracking.runs import resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    task = TASKS[task_of_version(uri, args.model_name, args.version)]
    p = promote(uri, args.model_name, args.version, args.alias, task.metric, task.higher_is_better)
    verdict = "moved to" if p.promoted else "stays on"
    console().say(f"'{p.alias}' {verdict} version {p.holder}: {p.reason}")
    return 0
