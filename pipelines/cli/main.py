"""``perceiver-pipeline``: one console script, its commands in one table.

Each command is a row of ``COMMANDS``: its help, how it adds its arguments, its handler, and
whether it starts engines (Ray, DeepSpeed, MLflow) whose output goes to a log file
(``pipelines.console``; ``--verbose`` shows it instead). Handlers stay thin: parse, load and
validate the config, call one function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pipelines.cli.convert_cmd as convert_cmd
import pipelines.cli.data_cmd as data_cmd
import pipelines.cli.demo as demo
import pipelines.cli.jobs_cmd as jobs_cmd
import pipelines.cli.registry_cmd as registry_cmd
import pipelines.cli.train_cmd as train_cmd
import pipelines.cli.workflow_cmd as workflow_cmd
from pipelines.config.loader import ConfigError
from pipelines.console import console
from pipelines.errors import PipelineError

DESCRIPTION = """\
Perceiver IO pipeline: preprocess raw media with Ray Data, train any task with Ray Train +
DeepSpeed ZeRO, evaluate, and register/promote models in MLflow.

Environment: RAY_ADDRESS (connect to a cluster; default: start a local one),
MLFLOW_TRACKING_URI (default: MLflow's own, a mlflow.db sqlite file in this directory),
RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH (the token of a cluster with token auth; a local
cluster started here writes ~/.ray/auth_token).
Engine output (Ray, DeepSpeed, MLflow) goes to a log file named at the start; --verbose
shows it instead."""


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None
    config_keys: bool = False  # list every config key in --help
    engines: bool = True  # starts Ray/DeepSpeed/MLflow: their output goes to the log file


COMMANDS: dict[str, Command] = {
    "demo": Command(
        "generate a task's sample data and run the whole chain locally",
        demo.add_demo_args,
        demo.handle,
        "Generate a small dataset for --task (real files in the real layout, a few broken on "
        "purpose) under --out, then preprocess, train the task's debug config on 2 CPU "
        "workers (ZeRO-2), evaluate, register perceiver-<task> and promote, and print a "
        "summary.",
    ),
    "sample-data": Command(
        data_cmd.SAMPLE_DATA_HELP,
        data_cmd.add_sample_data_args,
        data_cmd.run_sample_data,
        data_cmd.SAMPLE_DATA_DESCRIPTION,
        engines=False,
    ),
    "preprocess": Command(
        data_cmd.PREPROCESS_HELP,
        data_cmd.add_preprocess_args,
        data_cmd.run_preprocess,
        data_cmd.PREPROCESS_DESCRIPTION,
    ),
    "train": Command(
        "train a task with Ray Train + DeepSpeed ZeRO, log to MLflow",
        train_cmd.add_train_args,
        train_cmd.run_train,
        "Train on the shards in data.shards with TorchTrainer and DeepSpeed; logs params, "
        "per-step metrics, validation, checkpoints and the final model to an MLflow run. "
        "Rerunning a train.run_name, or --resume RUN_NAME, continues from its latest "
        "checkpoint.",
        config_keys=True,
    ),
    "evaluate": Command(
        "score a run's model on the val shards and log metrics and pictures",
        train_cmd.add_evaluate_args,
        train_cmd.run_evaluate,
        "Load the model logged by --run-id from MLflow, score data.val_split with Ray Data "
        "batch inference, and log the task's val_* metrics and pictures to the run.",
        config_keys=True,
    ),
    "register": Command(
        "register a run's model as the challenger in the MLflow Model Registry",
        registry_cmd.add_register_args,
        registry_cmd.run_register,
        "Create a new version of --model-name from the model logged by --run-id, give it "
        "the alias 'challenger', and tag it with the training run, the data manifest "
        "version and hash, the config hash and the code version.",
    ),
    "promote": Command(
        "make the challenger champion if it beats the champion on the same data",
        registry_cmd.add_promote_args,
        registry_cmd.run_promote,
        registry_cmd.PROMOTE_DESCRIPTION,
    ),
    "rollback": Command(
        "move the champion back to the previous one",
        registry_cmd.add_rollback_args,
        registry_cmd.run_rollback,
        registry_cmd.ROLLBACK_DESCRIPTION,
    ),
    "run": Command(
        "the whole chain: [preprocess], train, evaluate, register, promote",
        train_cmd.add_run_args,
        train_cmd.run_chain,
        "Run every step in order on one config; with --input, preprocess that raw folder "
        "into data.shards first.",
        config_keys=True,
    ),
    "workflow": Command(
        workflow_cmd.HELP,
        workflow_cmd.add_workflow_args,
        workflow_cmd.run,
        workflow_cmd.DESCRIPTION,
    ),
    "submit": Command(
        jobs_cmd.SUBMIT_HELP,
        jobs_cmd.add_submit_args,
        jobs_cmd.run_submit,
        jobs_cmd.SUBMIT_DESCRIPTION,
        engines=False,
    ),
    "jobs": Command(
        jobs_cmd.JOBS_HELP,
        jobs_cmd.add_jobs_args,
        jobs_cmd.run_jobs,
        "jobs list: every job at the cluster; jobs status|logs|stop ID: one job (status "
        "exits 1 for FAILED, 3 for STOPPED). The address and token are found as for submit.",
        engines=False,
    ),
    "convert": Command(
        "convert a Hugging Face transformers Perceiver checkpoint into our model",
        convert_cmd.add_convert_args,
        convert_cmd.run,
        convert_cmd.description(),
        engines=False,
    ),
}


def _config_epilog() -> str:
    from pipelines.tasks import option_help

    return "config keys (override any with --set KEY=VALUE), per task:\n" + option_help()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perceiver-pipeline",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose", action="store_true", help="show the engines' output instead of logging it"
    )
    common.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="where the engines' log file goes (default: <out>/logs for demo, else "
        "./perceiver-logs)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=command.help,
            description=command.description or command.help,
            epilog=_config_epilog() if command.config_keys else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )
        command.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = COMMANDS[args.command]
    out = console()
    if command.engines:
        default = Path(args.out) / "logs" if hasattr(args, "out") else Path("perceiver-logs")
        out.configure(args.log_dir or default, args.command, verbose=args.verbose)
    try:
        return command.run(args)
    except (ConfigError, ValueError, PipelineError) as exc:
        print(f"perceiver-pipeline {args.command}: error: {exc}", file=out.errors)
        if out.log_path is not None:
            print(f"(engine logs: {out.log_path})", file=out.errors)
        return 2
    finally:
        from pipelines.cluster import shutdown_ray

        shutdown_ray()
        out.stop()
        out.configure(Path("."), args.command, verbose=True)  # nothing more to redirect


if __name__ == "__main__":
    sys.exit(main())
