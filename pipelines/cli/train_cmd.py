"""The config-driven commands: ``train``, ``evaluate`` and ``run`` (the whole chain)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipelines.cli.args import add_set_arg
from pipelines.console import console


def add_config_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "--config",
        type=Path,
        required=required,
        help="pipeline YAML naming its task, or the name of a shipped one (pipelines/configs: "
        "image_classification, image_classification_debug, ...); keys listed below",
    )
    add_set_arg(
        p, "override one config key, e.g. --set train.epochs=3 --set deepspeed.zero_stage=3"
    )


def add_train_args(p: argparse.ArgumentParser) -> None:
    add_config_args(p, required=False)
    p.add_argument(
        "--resume",
        metavar="RUN_NAME",
        default=None,
        help="continue a stopped run from its latest checkpoint, in the same MLflow run "
        "(its config comes from the run; --set still applies)",
    )
    p.add_argument(
        "--storage-path",
        type=Path,
        default=None,
        help="with --resume: where the run is (default: train.storage_path of --config, "
        "else demo-output/ray_results)",
    )


def add_evaluate_args(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    p.add_argument("--run-id", required=True, help="MLflow run whose logged model to score")
    p.add_argument("--split", default=None, help="manifest split (default: data.val_split)")


def add_run_args(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    p.add_argument("--input", type=Path, default=None, help="raw dataset to preprocess first")
    p.add_argument("--overwrite", action="store_true", help="replace existing shards")


def _config(args: argparse.Namespace) -> Any:
    from pipelines.tasks import load_config

    return load_config(args.config, args.overrides)


def _resume_config(args: argparse.Namespace) -> tuple[Any, str | None, str | None]:
    """The config, MLflow run and tracking URI that ``train`` recorded for ``--resume``."""
    from pipelines.tasks import load_config
    from pipelines.training.driver import run_record

    if args.storage_path is not None:
        storage = args.storage_path
    elif args.config is not None:
        storage = _config(args).train.storage_path
    else:
        storage = Path("demo-output/ray_results")
    record = run_record(storage, args.resume)
    tree = dict(record["pipeline"])
    tree["train"] = {**tree.get("train", {}), "run_name": args.resume, "storage_path": str(storage)}
    cfg = load_config(None, args.overrides, base=tree)
    return cfg, record.get("mlflow_run_id"), record.get("tracking_uri")


def run_train(args: argparse.Namespace) -> int:
    from pipelines.cluster import init_ray
    from pipelines.tracking.runs import resolve_tracking_uri, run_name_for, tracked_run
    from pipelines.training.driver import train

    if args.resume is None and args.config is None:
        raise ValueError("train needs --config (or --resume RUN_NAME)")
    if args.resume is not None:
        cfg, run_id, uri = _resume_config(args)
        uri = uri or resolve_tracking_uri(cfg.tracking.tracking_uri)
    else:
        cfg, run_id = _config(args), None
        uri = resolve_tracking_uri(cfg.tracking.tracking_uri)
    init_ray()
    if run_id is not None:
        console().say(f"resuming {run_name_for(cfg)} (MLflow run {run_id})")
    with tracked_run(cfg, uri, run_id) as (cfg, run_id):
        outcome = train(cfg, tracking_uri=uri, run_id=run_id)
    result = {
        "run_id": run_id,
        "run_name": outcome.run_name,
        "checkpoint": outcome.checkpoint_path,
        "best_checkpoint": outcome.best_checkpoint_path,
        **{k: v for k, v in outcome.metrics.items() if not isinstance(v, list)},
    }
    console().say(json.dumps(result, indent=2, default=str))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from pipelines.cluster import init_ray
    from pipelines.evaluation.evaluate import evaluate
    from pipelines.tracking.runs import resolve_tracking_uri

    cfg = _config(args)
    init_ray()
    result = evaluate(cfg, args.run_id, resolve_tracking_uri(cfg.tracking.tracking_uri), args.split)
    console().say(json.dumps(result.metrics, indent=2))
    if result.pictures:
        console().say(f"pictures logged to run {args.run_id}: {', '.join(result.pictures)}")
    return 0


def run_chain(args: argparse.Namespace) -> int:
    from pipelines.chain import format_summary, run_pipeline

    summary = run_pipeline(_config(args), args.input, overwrite=args.overwrite)
    console().say(format_summary(summary))
    return 0
