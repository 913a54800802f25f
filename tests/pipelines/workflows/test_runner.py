"""Workflows end to end on real engines: the session's Ray cluster, a real MLflow server,
real images preprocessed and a tiny model really trained.

In process: a first run does every step; a rerun finds no new data; with ``retrain:
always`` every step is skipped as done; new images rerun preprocess and train, and a failing
evaluate stops the workflow by name. Then, through the CLI with ``--address``, the fixed
workflow resumes at evaluate with each step a Ray job on the session's head, and ``workflow
status`` shows each step's run and job.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
import yaml

from pipelines.workflows.runner import StepFailed, run_workflow
from pipelines.workflows.spec import load_workflow
from pipelines.workflows.state import WorkflowState
from tests.pipelines.helpers import run_cli

STEPS = ["preprocess", "train", "evaluate", "register", "promote"]


@pytest.fixture
def project(tmp_path, ray_cluster, mlflow_server, request) -> Path:
    """A raw ImageNet-layout folder and a workflow file training a tiny model on it."""
    from preprocessing.sample_data.image import write_imagenet_sample

    write_imagenet_sample(
        tmp_path / "raw", num_classes=2, train_per_class=8, val_per_class=3, seed=5
    )
    name = request.node.name.replace("_", "-")[:40]
    tree = {
        "name": name,
        "config": "image_classification_debug",
        "set": [
            f"data.shards={tmp_path / 'shards'}",
            f"train.storage_path={tmp_path / 'ray_results'}",
            "model.num_classes=2",
            "train.epochs=1",
            "deepspeed.micro_batch_size=4",
            "train.system_metrics_seconds=0",
            "evaluate.pictures=2",
            f"tracking.experiment={name}-runs",
        ],
        "model_name": f"wf-{name}",
        "experiment": f"{name}-workflows",
        "steps": [{"kind": "preprocess", "input": "raw"}] + [{"kind": kind} for kind in STEPS[1:]],
    }
    (tmp_path / "workflow.yaml").write_text(yaml.safe_dump(tree))
    return tmp_path


def variant(project: Path, name: str, **changes) -> Path:
    tree = yaml.safe_load((project / "workflow.yaml").read_text())
    tree.update(changes)
    path = project / name
    path.write_text(yaml.safe_dump(tree))
    return path


def statuses(result) -> list[tuple[str, str]]:
    return [(r.kind, r.status) for r in result.steps]


def add_images(project: Path, tag: str) -> None:
    for folder in sorted((project / "raw" / "train").iterdir())[:2]:
        first = sorted(folder.glob("*.JPEG"))[-1]
        shutil.copy(first, folder / f"{tag}-{first.name}")


def test_rerun_no_new_data_skip_new_data_failure_and_resume_as_ray_jobs(
    project, mlflow_server, ray_head
):
    uri = mlflow_server
    wf = load_workflow(project / "workflow.yaml")
    client = mlflow.MlflowClient(uri)

    first = run_workflow(wf, uri)
    assert first.outcome == "finished"
    assert statuses(first) == [(k, "done") for k in STEPS]
    outputs = {r.kind: r.outputs for r in first.steps}
    assert outputs["preprocess"]["new_data"] and outputs["preprocess"]["manifest_version"] == 1
    assert outputs["register"]["version"] == "1" and outputs["promote"]["holder"] == "1"
    assert client.get_model_version_by_alias(wf.model_name, "champion").version == "1"
    parent = client.get_run(first.parent)
    assert parent.data.tags["perceiver.workflow.outcome"] == "finished"
    assert parent.info.status == "FINISHED"
    assert {client.get_run(r.run_id).data.tags["mlflow.parentRunId"] for r in first.steps} == {
        first.parent
    }

    # Same raw folder: preprocess is done, and the shards are those already trained on.
    again = run_workflow(wf, uri)
    assert again.outcome == "no_new_data"
    assert statuses(again) == [("preprocess", "skipped")]
    status = run_cli("workflow", "status", again.parent, "--tracking-uri", uri)
    assert status.returncode == 0, status.stderr
    assert "no_new_data" in status.stdout and "train      not needed (no new data)" in status.stdout

    # retrain: always -> every step's key already finished: all skipped, nothing redone.
    always = load_workflow(variant(project, "always.yaml", retrain="always"))
    skipped = run_workflow(always, uri)
    assert statuses(skipped) == [(k, "skipped") for k in STEPS]
    assert {r.kind: r.done_in for r in skipped.steps} == {r.kind: r.run_id for r in first.steps}
    assert len(client.search_model_versions(f"name='{wf.model_name}'")) == 1

    # New images and a step that fails: preprocess publishes a new manifest version, so
    # train runs again; evaluate fails, stops the workflow by name, keeps what came before.
    add_images(project, "new1")
    broken = load_workflow(
        variant(
            project,
            "broken.yaml",
            steps=[
                {"kind": "preprocess", "input": "raw"},
                {"kind": "train"},
                {"kind": "evaluate", "split": "no-such-split"},
                {"kind": "register"},
                {"kind": "promote"},
            ],
        )
    )
    with pytest.raises(StepFailed, match=r"step 3 \(evaluate\) failed: .*no-such-split") as err:
        run_workflow(broken, uri)
    assert "rerunning the workflow resumes here" in str(err.value)
    failed = client.search_runs(
        [client.get_experiment_by_name(wf.spec.experiment).experiment_id],
        order_by=["attributes.start_time DESC"],
        filter_string="tags.`perceiver.workflow.outcome` = 'failed'",
    )[0]
    status = run_cli("workflow", "status", failed.info.run_id, "--tracking-uri", uri)
    assert status.returncode == 1
    assert "preprocess done" in status.stdout and "train      done" in status.stdout
    assert "evaluate   failed" in status.stdout and "register   pending" in status.stdout
    failed_steps = {
        r.kind: r for r in WorkflowState(uri, wf.spec.experiment).steps_of(failed.info.run_id)
    }
    assert failed_steps["preprocess"].outputs["manifest_version"] == 2
    new_run = failed_steps["train"].outputs["run_id"]
    assert new_run != outputs["train"]["run_id"]
    assert client.get_run(new_run).data.tags["perceiver.data_version"] == "2"

    # The fixed workflow, through the CLI, each step a Ray job on the session's head: it
    # resumes at evaluate (preprocess and train are done for this data).
    resumed = run_cli(
        "workflow",
        "run",
        str(project / "workflow.yaml"),
        "--address",
        ray_head.job_api,
        "--tracking-uri",
        uri,
        "--log-dir",
        str(project / "logs"),
        timeout=1200,
    )
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-4000:]
    assert f"as Ray jobs on {ray_head.job_api}" in resumed.stdout
    assert "finished" in resumed.stdout.splitlines()[-1]
    status = run_cli(
        "workflow",
        "status",
        "--name",
        wf.name,
        "--experiment",
        wf.spec.experiment,
        "--tracking-uri",
        uri,
    )
    assert status.returncode == 0, status.stderr
    lines = [line for line in status.stdout.splitlines() if line[:4].strip()[:1].isdigit()]
    assert [line.split()[1:3] for line in lines] == [
        ["preprocess", "skipped"],
        ["train", "skipped"],
        ["evaluate", "done"],
        ["register", "done"],
        ["promote", "done"],
    ]
    assert all("Ray job perceiver-wf-" in line for line in lines[2:]), lines
    logs = sorted((project / "logs").glob("job-perceiver-wf-*.log"))
    assert len(logs) == 3
    champion = client.get_model_version_by_alias(wf.model_name, "champion")
    challenger = client.get_model_version_by_alias(wf.model_name, "challenger")
    assert challenger.version == "2" and challenger.run_id == new_run
    assert champion.version in ("1", "2")  # whichever scored better on the same split
