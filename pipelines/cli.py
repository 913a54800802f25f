"""``perceiver-pipeline``: one console script, one subcommand per pipeline step.

Entrypoints stay thin: parse arguments, load and validate the config, call one function.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.config import ConfigError, load_config, option_help
from pipelines.convert_cmd import add_parser as add_convert_parser
from pipelines.convert_cmd import run as run_convert
from pipelines.data_cmd import add_parsers as add_data_parsers
from pipelines.data_cmd import run_preprocess, run_sample_data

DESCRIPTION = """\
Perceiver IO pipeline: preprocess raw media with Ray Data, train with Ray Train + DeepSpeed
ZeRO, evaluate, and register/promote models in MLflow.

Environment: RAY_ADDRESS (connect to a cluster; default: start a local one),
MLFLOW_TRACKING_URI (default: MLflow's own, a mlflow.db sqlite file in this directory),
RAY_AUTH_MODE / RAY_AUTH_TOKEN (Ray token authentication; on by default)."""


def _add_config_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "--config",
        type=Path,
        required=required,
        help="pipeline YAML (see pipelines/configs/demo.yaml); keys listed below",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. --set train.epochs=3 --set deepspeed.zero_stage=3",
    )


def _config_epilog() -> str:
    return "config keys (override any with --set KEY=VALUE):\n" + option_help()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perceiver-pipeline",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser(
        "demo",
        help="generate sample data and run the whole chain locally",
        description="Generate a small ImageNet-layout dataset (real JPEGs, a few broken on "
        "purpose) under --out, then preprocess, train (2 CPU workers, ZeRO-2), evaluate, "
        "register and promote, and print a summary.",
        epilog=_config_epilog(),
        formatter_class=fmt,
    )
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="working folder")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    add_data_parsers(sub)
    add_convert_parser(sub)

    p = sub.add_parser(
        "train",
        help="train with Ray Train + DeepSpeed ZeRO, log to MLflow",
        description="Train on the shards in data.shards with TorchTrainer and DeepSpeed; logs "
        "params, per-step metrics, checkpoints and the final model to a new MLflow run.",
        epilog=_config_epilog(),
        formatter_class=fmt,
    )
    _add_config_args(p)

    p = sub.add_parser(
        "evaluate",
        help="score a run's model on the val shards and log the metrics",
        description="Load the model logged by --run-id from MLflow, score data.val_split with "
        "Ray Data batch inference, log val_top1/val_top5/val_loss and a confusion matrix.",
        epilog=_config_epilog(),
        formatter_class=fmt,
    )
    _add_config_args(p)
    p.add_argument("--run-id", required=True)
    p.add_argument("--split", default=None, help="manifest split (default: data.val_split)")

    p = sub.add_parser(
        "register",
        help="register a run's model in the MLflow Model Registry",
        description="Create a new version of --model-name from the model logged by --run-id.",
    )
    p.add_argument("--run-id", required=True)
    p.add_argument("--model-name", default="perceiver-image-classifier")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")

    p = sub.add_parser(
        "promote",
        help="move an alias to a version if its metric is not worse",
        description="Move --alias (default champion) to --version only if its --metric "
        "(higher is better) is >= the current holder's; the decision is tagged on the version.",
    )
    p.add_argument("--model-name", default="perceiver-image-classifier")
    p.add_argument("--version", required=True)
    p.add_argument("--alias", default="champion")
    p.add_argument("--metric", default="val_top1")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")

    p = sub.add_parser(
        "run",
        help="the whole chain: [preprocess], train, evaluate, register, promote",
        description="Run every step in order on one config; with --input, preprocess that raw "
        "folder into data.shards first.",
        epilog=_config_epilog(),
        formatter_class=fmt,
    )
    _add_config_args(p)
    p.add_argument("--input", type=Path, default=None, help="raw dataset to preprocess first")
    p.add_argument("--overwrite", action="store_true", help="replace existing shards")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (ConfigError, ValueError) as exc:
        print(f"perceiver-pipeline {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "demo":
        from pipelines.demo import run_demo

        run_demo(args.out, args.overrides)
        return 0
    if cmd == "sample-data":
        return run_sample_data(args)
    if cmd == "preprocess":
        return run_preprocess(args)
    if cmd == "convert":
        return run_convert(args)
    if cmd in ("register", "promote"):
        from pipelines.registry import promote, register
        from pipelines.tracking import resolve_tracking_uri

        uri = resolve_tracking_uri(args.tracking_uri)
        if cmd == "register":
            version = register(uri, args.run_id, args.model_name)
            print(f"registered {args.model_name} version {version} from run {args.run_id}")
        else:
            p = promote(uri, args.model_name, args.version, args.alias, args.metric)
            verdict = "moved to" if p.promoted else "stays on"
            print(f"'{p.alias}' {verdict} version {p.holder}: {p.reason}")
        return 0

    cfg = load_config(args.config, args.overrides)
    from pipelines.cluster import init_ray
    from pipelines.tracking import end_run, resolve_tracking_uri, start_run

    init_ray()
    uri = resolve_tracking_uri(cfg.tracking.tracking_uri)
    if cmd == "train":
        from pipelines.train import train

        run_id = start_run(cfg, uri, run_name=cfg.train.run_name)
        try:
            outcome = train(cfg, tracking_uri=uri, run_id=run_id)
        except BaseException:
            end_run(uri, run_id, "FAILED")
            raise
        end_run(uri, run_id)
        print(
            json.dumps(
                {"run_id": run_id, "checkpoint": outcome.checkpoint_path, **outcome.metrics},
                indent=2,
                default=str,
            )
        )
        return 0
    if cmd == "evaluate":
        from pipelines.evaluate import evaluate

        result = evaluate(cfg, args.run_id, uri, args.split)
        print(json.dumps(result.metrics, indent=2))
        return 0
    if cmd == "run":
        from pipelines.run import format_summary, run_pipeline

        print(format_summary(run_pipeline(cfg, args.input, overwrite=args.overwrite)))
        return 0
    raise ValueError(f"unknown command {cmd!r}")


if __name__ == "__main__":
    raise SystemExit(main())
