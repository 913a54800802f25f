"""A workflow's state, kept in MLflow: a parent run per workflow run, a nested run per step.

Tags carry everything the runner needs: on the parent, the workflow's name and outcome and
the data it ran on; on each step run, the step's kind, key, status (running, done, skipped,
failed), outputs (JSON), error and Ray job id. The resolved workflow is an artefact of the
parent (``workflow.json``), which a step run as a Ray job reads back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

WORKFLOW = "perceiver.workflow"
OUTCOME = "perceiver.workflow.outcome"  # finished, no_new_data, failed
DATA = "perceiver.workflow.data"
STEP = "perceiver.step"
INDEX = "perceiver.step.index"
KEY = "perceiver.step.key"
STATUS = "perceiver.step.status"
OUTPUTS = "perceiver.step.outputs"
ERROR = "perceiver.step.error"
JOB = "perceiver.step.ray_job"
SKIPPED_FROM = "perceiver.step.done_in"
PARENT = "mlflow.parentRunId"
SPEC_ARTIFACT = "workflow.json"


@dataclass
class StepRecord:
    run_id: str
    kind: str
    index: int
    status: str
    key: str
    outputs: dict[str, Any]
    error: str
    job: str
    done_in: str


class WorkflowState:
    """The MLflow side of a workflow: its experiment, runs and their tags."""

    def __init__(self, tracking_uri: str, experiment: str):
        from mlflow import MlflowClient

        self.uri = tracking_uri
        self.client = MlflowClient(tracking_uri)
        exp = self.client.get_experiment_by_name(experiment)
        self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(experiment)

    @classmethod
    def for_run(cls, tracking_uri: str, run_id: str) -> WorkflowState:
        """The state of the workflow that step or parent run ``run_id`` belongs to."""
        from mlflow import MlflowClient

        exp_id = MlflowClient(tracking_uri).get_run(run_id).info.experiment_id
        name = MlflowClient(tracking_uri).get_experiment(exp_id).name
        return cls(tracking_uri, name)

    # --- parent runs ---------------------------------------------------------------------

    def start(self, workflow: Any) -> str:
        from datetime import UTC, datetime

        from pipelines.tracking.runs import log_artifact_bytes

        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{workflow.name}-{stamp}",
            tags={WORKFLOW: workflow.name, "perceiver.workflow.file": workflow.source},
        )
        data = json.dumps(workflow.to_json(), indent=2, default=str).encode()
        log_artifact_bytes(self.uri, run.info.run_id, SPEC_ARTIFACT, data)
        return str(run.info.run_id)

    def finish(self, parent: str, outcome: str, data: str | None = None) -> None:
        self.client.set_tag(parent, OUTCOME, outcome)
        if data is not None:
            self.client.set_tag(parent, DATA, data)
        self.client.set_terminated(parent, "FAILED" if outcome == "failed" else "FINISHED")

    def workflow_of(self, parent: str) -> Any:
        import mlflow

        from pipelines.workflows.spec import Workflow

        path = mlflow.artifacts.download_artifacts(
            run_id=parent, artifact_path=SPEC_ARTIFACT, tracking_uri=self.uri
        )
        with open(path) as f:
            return Workflow.from_json(json.load(f))

    def last_finished(self, name: str) -> Any | None:
        """The latest run of workflow ``name`` that ran to its end (or found no new data)."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{WORKFLOW}` = '{name}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None

    def latest(self, name: str | None = None) -> Any | None:
        where = f"tags.`{WORKFLOW}` = '{name}'" if name else f"tags.`{WORKFLOW}` != ''"
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=where,
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None

    # --- step runs -----------------------------------------------------------------------

    def find_done(self, key: str) -> StepRecord | None:
        """The latest step run with ``key`` that finished (status done)."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{KEY}` = '{key}' and tags.`{STATUS}` = 'done'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return self._record(runs[0]) if runs else None

    def start_step(
        self, parent: str, kind: str, index: int, key: str, status: str = "running"
    ) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{index + 1}-{kind}",
            tags={PARENT: parent, STEP: kind, INDEX: str(index), KEY: key, STATUS: status},
        )
        return str(run.info.run_id)

    def set_job(self, step_run: str, job_id: str) -> None:
        self.client.set_tag(step_run, JOB, job_id)

    def step_done(self, step_run: str, outputs: dict[str, Any], status: str = "done") -> None:
        self.client.set_tag(step_run, OUTPUTS, json.dumps(outputs, default=str))
        self.client.set_tag(step_run, STATUS, status)
        self.client.set_terminated(step_run, "FINISHED")

    def step_failed(self, step_run: str, error: str) -> None:
        self.client.set_tag(step_run, ERROR, error[:4000])
        self.client.set_tag(step_run, STATUS, "failed")
        self.client.set_terminated(step_run, "FAILED")

    def mark_skipped(self, step_run: str, done: StepRecord) -> None:
        self.client.set_tag(step_run, SKIPPED_FROM, done.run_id)
        self.step_done(step_run, done.outputs, status="skipped")

    def step(self, step_run: str) -> StepRecord:
        return self._record(self.client.get_run(step_run))

    def steps_of(self, parent: str) -> list[StepRecord]:
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{PARENT}` = '{parent}'"
        )
        return sorted((self._record(r) for r in runs), key=lambda r: r.index)

    def parent_of(self, step_run: str) -> str:
        return str(self.client.get_run(step_run).data.tags[PARENT])

    @staticmethod
    def _record(run: Any) -> StepRecord:
        tags = run.data.tags
        return StepRecord(
            run_id=run.info.run_id,
            kind=tags.get(STEP, "?"),
            index=int(tags.get(INDEX, -1)),
            status=tags.get(STATUS, "?"),
            key=tags.get(KEY, ""),
            outputs=json.loads(tags.get(OUTPUTS, "{}")),
            error=tags.get(ERROR, ""),
            job=tags.get(JOB, ""),
            done_in=tags.get(SKIPPED_FROM, ""),
        )
