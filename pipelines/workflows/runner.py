"""Running a workflow: its steps in order, each skipped if its key already finished.

In-process without an address; with one, each step is a Ray job (``workflow step``) on that
cluster, whose log goes to a file and whose outcome and outputs come back through MLflow.
A step that fails stops the workflow, which names it and its error; the outputs of the
steps before it stay, and the next run of the workflow resumes at the failed step.

With ``retrain: new_data``, a run stops before training, successfully, with "no new data"
when the shards are those the last finished run of the workflow trained on.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.console import console
from pipelines.errors import PipelineError
from pipelines.workflows import state as tags
from pipelines.workflows.keys import current_data, step_key, still_valid
from pipelines.workflows.state import StepRecord, WorkflowState
from pipelines.workflows.steps import STEPS

UPSTREAM = "perceiver.step.upstream"


class StepFailed(PipelineError):
    """A workflow step failed; the message names it, its error and where to look."""


@dataclass
class WorkflowRun:
    parent: str
    outcome: str  # finished, no_new_data
    steps: list[StepRecord] = field(default_factory=list)


def _first_line(exc: BaseException) -> str:
    """One line for an error: the root cause a wrapper (Ray's ``WorkerGroupError``) quotes
    as its last ``SomeError: message`` line, else the error's own first line."""
    import re

    text = str(exc).strip()
    quoted = re.findall(r"^\s*((?:\w+\.)*\w+(?:Error|Exception): .+)$", text, re.MULTILINE)
    if quoted:
        return quoted[-1].strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def no_new_data(state: WorkflowState, wf: Any) -> str | None:
    """The message to stop with if the shards are those the last finished run trained on."""
    data = current_data(wf.pipeline.data.shards)
    last = state.last_finished(wf.name)
    if data is None or last is None or last.data.tags.get(tags.DATA) != data:
        return None
    return (
        f"no new data: the shards ({wf.pipeline.data.shards}, {data}) are those workflow run "
        f"{last.info.run_id} already trained on; nothing to retrain"
    )


def run_workflow(
    wf: Any, tracking_uri: str, address: str | None = None, job_logs: Path | None = None
) -> WorkflowRun:
    """Run ``wf``'s steps; ``address`` (a job API URL) runs each as a Ray job there."""
    import json

    from pipelines.jobs.client import JobsClient

    out = console()
    state = WorkflowState(tracking_uri, wf.spec.experiment)
    jobs = JobsClient(address) if address else None
    parent = state.start(wf)
    where = f"as Ray jobs on {jobs.address}" if jobs else "in this process"
    out.say(f"workflow {wf.name}: MLflow run {parent} (experiment {wf.spec.experiment}), {where}")
    upstream: dict[str, Any] = {}
    total = len(wf.spec.steps)
    for index, step in enumerate(wf.spec.steps):
        if step.kind == "train" and wf.spec.retrain == "new_data":
            message = no_new_data(state, wf)
            if message:
                out.say(message)
                state.finish(parent, "no_new_data", current_data(wf.pipeline.data.shards))
                return WorkflowRun(parent, "no_new_data", state.steps_of(parent))
        try:
            key = step_key(step, wf.pipeline, wf.model_name, upstream)
        except (ValueError, KeyError) as exc:
            state.finish(parent, "failed")
            raise StepFailed(f"step {index + 1} ({step.kind}) cannot start: {exc}") from exc
        done = state.find_done(key)
        if done is not None and still_valid(step, wf.pipeline, done.outputs):
            run = state.start_step(parent, step.kind, index, key, status="skipped")
            state.mark_skipped(run, done)
            out.step(index + 1, total, f"{step.kind}: done before (step run {done.run_id}), skip")
            upstream.update(done.outputs)
            continue
        run = state.start_step(parent, step.kind, index, key)
        state.client.set_tag(run, UPSTREAM, json.dumps(upstream, default=str))
        out.step(index + 1, total, step.kind + (" (Ray job)" if jobs else ""))
        try:
            if jobs is None:
                outputs = execute(state, run, wf, step, upstream)
            else:
                outputs = execute_as_job(jobs, state, run, index, step.kind, job_logs)
        except BaseException as exc:
            error = state.step(run).error or _first_line(exc)
            if state.step(run).status != "failed":
                state.step_failed(run, error)
            state.finish(parent, "failed")
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise StepFailed(
                f"step {index + 1} ({step.kind}) failed: {error}. Step run {run}; the steps "
                "before it keep their outputs, and rerunning the workflow resumes here"
            ) from exc
        upstream.update(outputs)
    state.finish(parent, "finished", current_data(wf.pipeline.data.shards))
    return WorkflowRun(parent, "finished", state.steps_of(parent))


def execute(state: WorkflowState, run: str, wf: Any, step: Any, upstream: dict) -> dict:
    """Run one step here and record its outcome on its step run."""
    try:
        outputs = STEPS[step.kind](wf, step, upstream, state.uri)
    except Exception as exc:
        state.step_failed(run, _first_line(exc))
        raise
    state.step_done(run, outputs)
    return outputs


def execute_step_run(tracking_uri: str, run: str) -> dict:
    """What ``workflow step`` does inside a Ray job: the step a runner recorded as ``run``."""
    import json

    state = WorkflowState.for_run(tracking_uri, run)
    record = state.step(run)
    wf = state.workflow_of(state.parent_of(run))
    upstream = json.loads(state.client.get_run(run).data.tags.get(UPSTREAM, "{}"))
    try:
        step = wf.spec.steps[record.index]
    except IndexError:
        raise ValueError(
            f"step run {run} names step {record.index}, which its workflow lacks"
        ) from None
    try:
        return execute(state, run, wf, step, upstream)
    except Exception:
        traceback.print_exc()  # into the job's log
        raise


def execute_as_job(
    jobs: Any, state: WorkflowState, run: str, index: int, kind: str, job_logs: Path | None
) -> dict:
    """Submit ``workflow step`` for ``run`` as a Ray job, follow it, return its outputs."""
    from pipelines.jobs.runtime import entrypoint, runtime_env

    command = ["workflow", "step", "--step-run", run, "--tracking-uri", state.uri]
    submission = jobs.submit(
        entrypoint(command),
        runtime_env(),
        submission_id=f"perceiver-wf-{run}",
        metadata={"perceiver.workflow_step": kind},
    )
    state.set_job(run, submission.submission_id)
    log_path = (job_logs or Path("perceiver-logs")) / f"job-{submission.submission_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    console().say(f"  Ray job {submission.submission_id}; its log: {log_path}")
    with log_path.open("a") as log:
        status = jobs.follow(submission.submission_id, write=log.write)
    record = state.step(run)
    if status != "SUCCEEDED" or record.status != "done":
        tail = log_path.read_text().strip().splitlines()[-15:]
        console().say("  last lines of the job's log:\n    " + "\n    ".join(tail))
        detail = record.error or jobs.info(submission.submission_id).message or status
        raise StepFailed(f"Ray job {submission.submission_id} {status}: {detail}")
    return record.outputs
