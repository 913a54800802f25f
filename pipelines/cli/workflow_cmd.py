"""``workflow run|status|step``: a workflow file's steps, skipping what is already done."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.cli.args import add_set_arg
from pipelines.console import console

if TYPE_CHECKING:
    from pipelines.workflows.state import StepRecord

HELP = "run a workflow (preprocess, train, evaluate, register, promote), or show one's steps"
DESCRIPTION = """\
workflow run FILE: run the steps of a workflow file (or a shipped one: scheduled.yaml) in
order. Each step is keyed by its name, config, input (the raw folder; the shards' manifest
version and hash; the upstream run or version) and the code version; a step whose key
already finished is skipped, so rerunning a workflow resumes at its first unfinished step,
and a step whose data changed runs again. With 'retrain: new_data' a run whose shards are
those the last finished run trained on ends successfully with "no new data". Without
--address (or RAY_ADDRESS=http://...), steps run in this process; with it, each step is a
Ray job on that cluster. State lives in MLflow: a parent run per workflow run (experiment
of the workflow file, default perceiver-workflows) and a nested run per step.

workflow status [RUN_ID]: each step of a workflow run (default: the latest) as done,
skipped, failed, running or pending, with its MLflow run and Ray job.

workflow step: one step, as a Ray job runs it (used by workflow run --address)."""


def _common(p: argparse.ArgumentParser) -> None:
    """--verbose and --log-dir after the action too (``workflow run F --log-dir D``); SUPPRESS
    keeps a value given before the action (``workflow --verbose step``)."""
    p.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the engines' output instead of logging it",
    )
    p.add_argument(
        "--log-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="where the log files go (default ./perceiver-logs)",
    )


def add_workflow_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="workflow_action", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="run a workflow file's steps")
    _common(run)
    run.add_argument("file", type=Path, help="workflow YAML, or a shipped one: scheduled.yaml")
    run.add_argument(
        "--address",
        default=None,
        help="run each step as a Ray job at this job API, http://HEAD:8265 (default: "
        "$RAY_ADDRESS if it is an http URL, else in this process)",
    )
    run.add_argument("--input", type=Path, default=None, help="replace the preprocess input")
    add_set_arg(run, "override a key of the pipeline config (after the workflow's own set:)")
    run.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")
    status = sub.add_parser("status", help="show each step of a workflow run")
    _common(status)
    status.add_argument("run_id", nargs="?", default=None, help="default: the latest run")
    status.add_argument("--name", default=None, help="the latest run of this workflow")
    status.add_argument("--experiment", default="perceiver-workflows")
    status.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")
    step = sub.add_parser("step", help="run one recorded step (what a step's Ray job runs)")
    _common(step)
    step.add_argument("--step-run", required=True, help="the step's MLflow run")
    step.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")


def _job_address(address: str | None) -> str | None:
    import os

    if address:
        return address
    env = os.environ.get("RAY_ADDRESS", "")
    return env if env.startswith(("http://", "https://")) else None


def run(args: argparse.Namespace) -> int:
    from pipelines.tracking.runs import resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    if args.workflow_action == "run":
        return _run(args, uri)
    if args.workflow_action == "status":
        return _status(args, uri)
    from pipelines.workflows.runner import execute_step_run

    execute_step_run(uri, args.step_run)
    return 0


def _run(args: argparse.Namespace, uri: str) -> int:
    import os

    from pipelines.workflows.runner import run_workflow
    from pipelines.workflows.spec import load_workflow

    wf = load_workflow(args.file, args.overrides, args.input)
    address = _job_address(args.address)
    if address:
        os.environ.pop("RAY_ADDRESS", None)  # this process starts no Ray of its own
    logs = args.log_dir or Path("perceiver-logs")
    result = run_workflow(wf, uri, address, job_logs=logs)
    out = console()
    out.say("")
    for record in result.steps:
        out.say(_line(record))
    if result.outcome == "no_new_data":
        out.say(f"workflow {wf.name}: no new data (run {result.parent})")
    else:
        out.say(f"workflow {wf.name}: finished (run {result.parent})")
    return 0


def _line(r: StepRecord) -> str:
    outputs = ", ".join(f"{k}={v}" for k, v in sorted(r.outputs.items()) if k != "metrics")
    where = f"run {r.run_id}" + (f", Ray job {r.job}" if r.job else "")
    if r.done_in:
        where += f", done in {r.done_in}"
    text = f"  {r.index + 1}. {r.kind:<10} {r.status:<8} {where}"
    if r.error:
        text += f"\n       error: {r.error}"
    elif outputs:
        text += f"\n       {outputs}"
    return text


def _status(args: argparse.Namespace, uri: str) -> int:
    from pipelines.workflows import state as tags
    from pipelines.workflows.state import WorkflowState

    parent: Any
    if args.run_id:
        state = WorkflowState.for_run(uri, args.run_id)
        parent = state.client.get_run(args.run_id)
    else:
        state = WorkflowState(uri, args.experiment)
        parent = state.latest(args.name)
        if parent is None:
            raise ValueError(f"no workflow runs in experiment {args.experiment!r} at {uri}")
    pid = parent.info.run_id
    wf = state.workflow_of(pid)
    records = {r.index: r for r in state.steps_of(pid)}
    out = console()
    outcome = parent.data.tags.get(tags.OUTCOME, parent.info.status.lower())
    out.say(f"workflow {wf.name}, run {pid}: {outcome}")
    for index, step in enumerate(wf.spec.steps):
        record = records.get(index)
        missing = "not needed (no new data)" if outcome == "no_new_data" else "pending"
        out.say(_line(record) if record else f"  {index + 1}. {step.kind:<10} {missing}")
    return 1 if outcome == "failed" else 0
