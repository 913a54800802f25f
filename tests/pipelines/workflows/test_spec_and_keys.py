"""Workflow files fail at load with the key named; step keys follow their inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.config.loader import ConfigError
from pipelines.workflows.keys import folder_fingerprint, step_key
from pipelines.workflows.spec import PromoteStep, load_workflow

STEPS = [
    {"kind": "preprocess", "input": "raw"},
    {"kind": "train"},
    {"kind": "evaluate"},
    {"kind": "register"},
    {"kind": "promote", "margin": 0.01},
]


def write(tmp_path: Path, **tree) -> Path:
    import yaml

    base = {"name": "wf", "config": "image_classification_debug", "steps": STEPS}
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump({**base, **tree}))
    (tmp_path / "raw").mkdir(exist_ok=True)
    return path


def test_the_shipped_scheduled_workflow_loads_with_its_cluster_paths():
    wf = load_workflow("scheduled.yaml")
    assert wf.spec.step_names() == ["preprocess", "train", "evaluate", "register", "promote"]
    assert wf.spec.retrain == "new_data"
    assert str(wf.spec.steps[0].input) == "/mnt/shared/raw/imagenet"
    assert str(wf.pipeline.data.shards) == "/mnt/shared/imagenet-shards"
    assert wf.model_name == "perceiver-image_classification"


def test_paths_overrides_and_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, set=["data.shards=shards", "train.epochs=1"])
    wf = load_workflow(path, ["train.epochs=2"], None)
    assert wf.spec.steps[0].input == (tmp_path / "raw").resolve()  # relative to the file
    assert wf.pipeline.data.shards == (tmp_path / "shards").resolve()  # relative to the cwd
    assert wf.pipeline.train.epochs == 2  # --set after the file's set
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert load_workflow(path, [], other).spec.steps[0].input == other.resolve()


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"steps": [STEPS[1], STEPS[0]]}, "steps must run in the order"),
        ({"steps": [STEPS[0], STEPS[0]]}, "each step kind may appear once"),
        ({"steps": [STEPS[0], STEPS[3]]}, "a register step needs a train step"),
        ({"steps": [*STEPS[:4], {"kind": "promote", "margin": -1}]}, "steps.4.promote.margin"),
        ({"retrain": "sometimes"}, "retrain"),
        ({"schedule": "nightly"}, "schedule: Extra inputs are not permitted"),
        ({"steps": [{"kind": "deploy"}]}, "steps.0"),
        ({"name": "bad name"}, "name: String should match pattern"),
    ],
)
def test_a_bad_workflow_fails_at_load_naming_the_key(tmp_path, tree, message):
    with pytest.raises(ConfigError, match="invalid workflow") as err:
        load_workflow(write(tmp_path, **tree))
    assert message in str(err.value)


def test_a_bad_pipeline_config_fails_at_load_too(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        load_workflow(write(tmp_path, set=["train.epochs=zero"]))
    with pytest.raises(ConfigError, match=r"workflow file 'nope\.yaml' not found"):
        load_workflow("nope.yaml")


def test_the_folder_fingerprint_sees_added_and_changed_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.jpg").write_bytes(b"x")
    first = folder_fingerprint(tmp_path)
    assert folder_fingerprint(tmp_path) == first
    (tmp_path / "a" / "2.jpg").write_bytes(b"y")
    second = folder_fingerprint(tmp_path)
    assert second != first
    os.utime(tmp_path / "a" / "1.jpg", ns=(1, 1))
    assert folder_fingerprint(tmp_path) != second
    with pytest.raises(ValueError, match="is not a folder"):
        folder_fingerprint(tmp_path / "missing")


def test_a_step_key_changes_with_its_upstream_and_its_config(tmp_path):
    wf = load_workflow(write(tmp_path))
    promote = wf.spec.steps[4]
    key = step_key(promote, wf.pipeline, wf.model_name, {"version": "3"})
    assert key == step_key(promote, wf.pipeline, wf.model_name, {"version": "3"})
    assert key != step_key(promote, wf.pipeline, wf.model_name, {"version": "4"})
    wider = PromoteStep(kind="promote", margin=0.5)
    assert key != step_key(wider, wf.pipeline, wf.model_name, {"version": "3"})
    with pytest.raises(ValueError, match="no shards at"):
        step_key(wf.spec.steps[1], wf.pipeline, wf.model_name, {})
