"""``submit`` and ``jobs``: any command as a Ray job on a cluster, and the jobs it runs.

``submit -- COMMAND ARGS`` sends ``perceiver-pipeline COMMAND ARGS`` to the cluster's job
API with this project's code and MLflow's settings (``pipelines.jobs.runtime``), streams the
job's log and exits with its outcome. ``jobs`` lists, shows, prints the log of, or stops jobs.
"""

from __future__ import annotations

import argparse
import time

from pipelines.console import console

SUBMIT_HELP = "run a command as a Ray job on a cluster and follow it"
SUBMIT_DESCRIPTION = """\
Submit 'perceiver-pipeline COMMAND ARGS...' (one of preprocess, train, evaluate, register,
promote, rollback, run, workflow) to a Ray cluster's job API, stream its log, and exit with
its outcome: 0 SUCCEEDED, 1 FAILED, 3 STOPPED.

The job carries this checkout's code (its working_dir, without .venv, data, demo output,
MLflow stores and caches; an installed package sends none) and MLFLOW_TRACKING_URI and the
MLflow/S3 credential variables that are set here. Paths in ARGS are read on the cluster.

A --submission-id never starts a second job: if a job with that id exists, submit says so
and follows it instead.

Authentication: the token comes from RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH
names, else ~/.ray/auth_token, and is sent whatever RAY_AUTH_MODE says.

example:
  perceiver-pipeline submit --address http://HEAD:8265 --num-gpus 0 -- \\
      run --config image_classification.yaml --set data.shards=/mnt/shared/shards"""

JOBS_HELP = "list the cluster's jobs, or show, print the log of, or stop one"


def add_address_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address",
        default=None,
        help="the cluster's job API, http://HEAD:8265 (default: $RAY_ADDRESS)",
    )


def add_submit_args(p: argparse.ArgumentParser) -> None:
    add_address_arg(p)
    p.add_argument(
        "--no-wait", action="store_true", help="print the submission id and return at once"
    )
    p.add_argument(
        "--submission-id",
        default=None,
        help="the job's id; if it exists, attach to that job instead of starting another",
    )
    p.add_argument("--num-cpus", type=float, default=None, help="CPUs reserved for the driver")
    p.add_argument("--num-gpus", type=float, default=None, help="GPUs reserved for the driver")
    p.add_argument(
        "remote_command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND ARGS",
        help="the perceiver-pipeline command to run, after --",
    )


def add_jobs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "status", "logs", "stop"])
    p.add_argument("submission_id", nargs="?", default=None, help="the job (not for list)")
    add_address_arg(p)


def run_submit(args: argparse.Namespace) -> int:
    from pipelines.jobs.client import JobsClient, exit_code
    from pipelines.jobs.runtime import entrypoint, runtime_env

    command = list(args.remote_command)
    if command and command[0] == "--":
        command = command[1:]
    line = entrypoint(command)
    client = JobsClient(args.address)
    out = console()
    sub = client.submit(
        line,
        runtime_env(),
        submission_id=args.submission_id,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        metadata={"perceiver.command": command[0]},
    )
    if sub.attached:
        out.say(
            f"a job with submission id {sub.submission_id} already exists at "
            f"{client.address}: following it, no new job started"
        )
    else:
        out.say(f"submitted {sub.submission_id} to {client.address}: {line}")
    if args.no_wait:
        out.say(f"follow it: perceiver-pipeline jobs logs {sub.submission_id}")
        return 0
    status = client.follow(sub.submission_id)
    info = client.info(sub.submission_id)
    message = (info.message or "").strip().splitlines()
    detail = f": {message[0]}" if status != "SUCCEEDED" and message else ""
    out.say(f"job {sub.submission_id} {status}{detail}")
    return exit_code(status)


def _when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


def run_jobs(args: argparse.Namespace) -> int:
    from pipelines.jobs.client import JobsClient, exit_code

    client = JobsClient(args.address)
    out = console()
    if args.action == "list":
        jobs = client.list()
        if not jobs:
            out.say(f"no jobs at {client.address}")
        for job in jobs:
            name = job.submission_id or job.job_id
            out.say(f"{name}  {job.status.value:<9}  {_when(job.start_time)}  {job.entrypoint}")
        return 0
    if not args.submission_id:
        raise ValueError(f"jobs {args.action} needs a submission id (see: jobs list)")
    if args.action == "status":
        info = client.info(args.submission_id)
        status = info.status.value
        message = (info.message or "").strip().splitlines()
        out.say(f"{args.submission_id}  {status}  {message[0] if message else ''}".rstrip())
        return exit_code(status) if status in ("FAILED", "STOPPED") else 0
    if args.action == "logs":
        print(client.logs(args.submission_id), end="", flush=True)
        return 0
    stopped = client.stop(args.submission_id)
    out.say(
        f"stop requested for {args.submission_id}"
        if stopped
        else f"{args.submission_id} had already ended"
    )
    return 0
