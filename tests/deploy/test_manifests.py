"""deploy/: the KubeRay manifests against the KubeRay v1.7 CRDs, their commands, the image.

Nothing here talks to a Kubernetes cluster or a container engine (there is none): the ray.io
objects are validated against the CRDs' openAPIV3Schema (tests/deploy/k8s_schema.py), the
commands against the real CLI parser and config loader. The MLflow objects are in
test_mlflow.py, the CronJob in test_cronjob.py, credentials/exposure/NetworkPolicies and the
schema of every object in test_security.py.
"""

from __future__ import annotations

import copy
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from tests.deploy import k8s_schema as ks
from tests.deploy import manifests as mf

AUTH_SECRET = "perceiver-ray-auth"
SHARED_CLAIM = "perceiver-shared"
SHARED_MOUNT = "/mnt/shared"
NAMESPACE = "perceiver"
RAY_KINDS = {"RayCluster", "RayJob", "RayCronJob"}

ALL = mf.load(mf.DEPLOY)
KUBERAY = mf.load(mf.KUBERAY)
RAY = [m for m in KUBERAY if m.doc.get("apiVersion") == "ray.io/v1"]


def _pyproject_pin(package: str) -> str:
    deps = tomllib.loads((mf.REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        m = re.fullmatch(rf"{re.escape(package)}(\[[^\]]*\])?==([\w.]+)", dep.replace(" ", ""))
        if m:
            return m.group(2)
    raise AssertionError(f"no exact pin for {package} in pyproject.toml")


_one = mf.one


def _train_job() -> dict[str, Any]:
    return _one(KUBERAY, "RayJob")


def _cron() -> dict[str, Any]:
    return _one(KUBERAY, "RayCronJob")


_cli_calls = mf.cli_calls


def _parsed(args: list[str]) -> Any:
    from pipelines.cli import build_parser

    return build_parser().parse_args(args)


# --- every file ------------------------------------------------------------------------------


def test_deploy_folder_holds_the_expected_objects() -> None:
    kinds = sorted(str(m.doc.get("kind")) for m in ALL)
    assert {
        *RAY_KINDS,
        "CronJob",
        "NetworkPolicy",
        "Deployment",
        "Service",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Namespace",
    } == set(kinds), kinds
    assert {m.doc["kind"] for m in RAY} == RAY_KINDS


@pytest.mark.parametrize("m", ALL, ids=lambda m: m.label)
def test_every_object_has_identity_and_namespace(m: mf.Manifest) -> None:
    doc = m.doc
    assert isinstance(doc.get("apiVersion"), str) and doc["apiVersion"]
    assert isinstance(doc.get("kind"), str) and doc["kind"]
    name = mf.name_of(doc)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), f"bad name {name!r}"
    assert len(name) <= 63
    if doc["kind"] == "Namespace":
        assert name == NAMESPACE
    else:
        assert doc["metadata"].get("namespace") == NAMESPACE


# --- ray.io objects against the CRDs ---------------------------------------------------------


@pytest.mark.parametrize("m", RAY, ids=lambda m: m.label)
def test_ray_object_is_valid_against_its_crd(m: mf.Manifest) -> None:
    problems = ks.validate_custom_resource(m.doc)
    assert not problems, f"{m.label}:\n" + "\n".join(problems)


def test_crd_schemas_do_not_close_objects_themselves() -> None:
    """Why k8s_schema closes objects: the CRDs never do, so plain JSON Schema lets typos by."""
    raw = ks.raw_crd_schema("RayJob")
    doc = copy.deepcopy(_train_job())
    doc["spec"]["shutdownAfterJobFinish"] = True  # misspelled
    assert not list(Draft7Validator(raw).iter_errors(doc))
    assert any("shutdownAfterJobFinish" in e for e in ks.validate_custom_resource(doc))


_set, _delete, _append = mf.set_at, mf.delete_at, mf.append_at


RC = "spec.rayClusterSpec"
CPU_WORKER = f"{RC}.workerGroupSpecs.0.template.spec.containers.0"
HEAD = f"{RC}.headGroupSpec.template.spec.containers.0"

# (id, mutation of the training RayJob, text the error must contain)
BROKEN = [
    ("misspelled-spec-key", _set("spec.shutdownAfterJobFinish", True), "shutdownAfterJobFinish"),
    ("misspelled-top-level", _set("specs", {}), "specs"),
    ("misspelled-container-key", _set(f"{CPU_WORKER}.volumeMount", []), "volumeMount"),
    ("misspelled-worker-group-key", _set(f"{RC}.workerGroupSpecs.1.replica", 8), "replica"),
    ("wrong-type-backoff", _set("spec.backoffLimit", "three"), "not of type 'integer'"),
    (
        "wrong-type-ray-start-param",
        _set(f"{RC}.headGroupSpec.rayStartParams.num-cpus", 0),
        "not of type 'string'",
    ),
    ("wrong-type-shutdown", _set("spec.shutdownAfterJobFinishes", "yes"), "boolean"),
    ("bad-enum-auth-mode", _set(f"{RC}.authOptions.mode", "tokens"), "is not one of"),
    ("missing-group-name", _delete(f"{RC}.workerGroupSpecs.0.groupName"), "groupName"),
    ("missing-head-template", _delete(f"{RC}.headGroupSpec.template"), "template"),
    ("bad-quantity", _set(f"{CPU_WORKER}.resources.limits.memory", "32 GB"), "does not match"),
    (
        "int-or-string-not-float-list",
        _set(f"{CPU_WORKER}.resources.limits.cpu", [8]),
        "is not valid under any of the given schemas",
    ),
    (
        "duplicate-env-name",
        _append(f"{CPU_WORKER}.env", {"name": "MLFLOW_TRACKING_URI"}),
        "duplicate entry",
    ),
    (
        "duplicate-container-port",
        _append(f"{HEAD}.ports", {"containerPort": 8265, "name": "x"}),
        "duplicate entry",
    ),
    ("int32-overflow", _set("spec.ttlSecondsAfterFinished", 2**31), "out of range for int32"),
    (
        "cel-guarded-field",
        _set(
            "spec.deletionStrategy",
            {"onSuccess": {"policy": "DeleteCluster"}, "onFailure": {"policy": "DeleteNone"}},
        ),
        "CEL rule",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_manifest_fails_validation(mutate: Any, expected: str) -> None:
    doc = copy.deepcopy(_train_job())
    assert not ks.validate_custom_resource(doc)
    mutate(doc)
    problems = ks.validate_custom_resource(doc)
    assert problems, "the broken manifest passed validation"
    assert any(expected in p for p in problems), problems


def test_broken_cron_job_template_fails_validation() -> None:
    doc = copy.deepcopy(_cron())
    doc["spec"]["jobTemplate"]["entryPoint"] = doc["spec"]["jobTemplate"].pop("entrypoint")
    doc["spec"]["concurrencyPolicy"] = "Forbid"  # batch/v1 CronJob has it; RayCronJob does not
    problems = ks.validate_custom_resource(doc)
    assert any("'entryPoint' was unexpected" in p for p in problems), problems
    assert any("'concurrencyPolicy' was unexpected" in p for p in problems), problems


def test_int_or_string_fields_take_both() -> None:
    doc = copy.deepcopy(_one(KUBERAY, "RayCluster"))
    limits = doc["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]
    for value in (8, "8", "8000m"):
        limits["limits"]["cpu"] = value
        assert not ks.validate_custom_resource(doc), value
    for value in (8.5, True, None):
        limits["limits"]["cpu"] = value
        assert ks.validate_custom_resource(doc), value


# --- policy: auth, versions, images ----------------------------------------------------------


@pytest.mark.parametrize("m", RAY, ids=lambda m: m.label)
def test_token_auth_is_on_in_every_ray_cluster_spec(m: mf.Manifest) -> None:
    assert mf.ray_cluster_specs(m.doc), "no cluster spec to check"
    assert not mf.check_token_auth(m.doc, AUTH_SECRET)


@pytest.mark.parametrize(
    "mutate",
    [
        _delete(f"{RC}.authOptions"),
        _set(f"{RC}.authOptions.mode", "disabled"),
        _append(f"{HEAD}.env", {"name": "RAY_AUTH_MODE", "value": "disabled"}),
        _append(f"{HEAD}.env", {"name": "RAY_AUTH_TOKEN", "value": "hunter2"}),
    ],
    ids=["no-authOptions", "mode-disabled", "env-disables-auth", "plain-text-token"],
)
def test_token_auth_check_catches_a_cluster_without_it(mutate: Any) -> None:
    doc = copy.deepcopy(_train_job())
    mutate(doc)
    assert mf.check_token_auth(doc, AUTH_SECRET)


@pytest.mark.parametrize("m", RAY, ids=lambda m: m.label)
def test_ray_version_is_the_project_pin(m: mf.Manifest) -> None:
    assert _pyproject_pin("ray") == "2.60.0"
    for where, spec in mf.ray_cluster_specs(m.doc):
        assert spec.get("rayVersion") == "2.60.0", where


@pytest.mark.parametrize("m", ALL, ids=lambda m: m.label)
def test_images_are_pinned(m: mf.Manifest) -> None:
    assert not mf.check_images(m.doc)
    assert not mf.check_same_image_per_cluster(m.doc)


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("registry.example.com/perceiver/perceiver-pipeline:0.1.0-cpu", True),
        ("registry.example.com:5000/perceiver-pipeline:0.1.0", True),
        ("python@sha256:" + "0" * 64, True),
        ("registry.example.com/perceiver/perceiver-pipeline:latest", False),
        ("registry.example.com:5000/perceiver-pipeline", False),
        ("rayproject/ray", False),
    ],
)
def test_image_pin_check(image: str, pinned: bool) -> None:
    assert mf.image_is_pinned(image) is pinned


def test_image_checks_catch_latest_and_mixed_images() -> None:
    doc = copy.deepcopy(_train_job())
    _set(f"{CPU_WORKER}.image", "registry.example.com/perceiver/perceiver-pipeline:latest")(doc)
    assert mf.check_images(doc)
    assert mf.check_same_image_per_cluster(doc)


# --- the commands ----------------------------------------------------------------------------


@pytest.mark.parametrize("m", RAY, ids=lambda m: m.label)
def test_pipeline_commands_parse_with_the_real_cli(m: mf.Manifest) -> None:
    calls = _cli_calls(m.doc)
    if m.doc["kind"] in ("RayJob", "RayCronJob"):
        assert calls, "the job does not run perceiver-pipeline"
    for args in calls:
        assert not mf.check_cli_call(args)


@pytest.mark.parametrize(
    ("entrypoint", "expected"),
    [
        (
            "perceiver-pipeline trian --config /app/configs/image_classification.yaml",
            "does not parse",
        ),
        ("perceiver-pipeline run --confg /app/configs/image_classification.yaml", "does not parse"),
        ("perceiver-pipeline preprocess --modality lidar --input a --output b", "does not parse"),
        (
            "perceiver-pipeline preprocess --modality video --input a --output b --height 8",
            "an option of autoflow",
        ),
        (
            "perceiver-pipeline run --config /app/configs/image_classification.yaml "
            "--set data.shard=/x",
            "unknown key",
        ),
        (
            "perceiver-pipeline run --config /app/configs/image_classification.yaml "
            "--set train.epochs=0",
            "train.epochs",
        ),
        ("perceiver-pipeline run --config /app/configs/nope.yaml", "not found"),
        (
            "perceiver-pipeline run --config pipelines/configs/image_classification.yaml",
            "not under /app",
        ),
    ],
)
def test_cli_check_catches_bad_commands(entrypoint: str, expected: str) -> None:
    doc = copy.deepcopy(_train_job())
    doc["spec"]["entrypoint"] = entrypoint
    problems = [p for args in _cli_calls(doc) for p in mf.check_cli_call(args)]
    assert any(expected in p for p in problems), problems


def test_train_job_runs_the_whole_chain_on_the_shared_volume() -> None:
    (args,) = _cli_calls(_train_job())
    ns = _parsed(args)
    assert ns.command == "run"
    assert str(ns.config) == "/app/configs/image_classification.yaml"
    assert ns.input is None and not ns.overwrite  # the RayCronJob preprocesses
    from pipelines.tasks import load_config

    cfg = load_config(mf.repo_config(ns.config), ns.overrides)
    assert cfg.data.shards == Path(SHARED_MOUNT, "imagenet-shards")
    assert cfg.train.storage_path == Path(SHARED_MOUNT, "ray_results")


def test_cron_preprocess_feeds_the_train_job_with_the_same_preprocessing() -> None:
    from pipelines.tasks import load_config

    (args,) = _cli_calls(_cron())
    ns = _parsed(args)
    assert ns.command == "preprocess" and ns.modality == "image"
    assert ns.input == Path(SHARED_MOUNT, "raw/imagenet")
    assert not ns.overwrite, "a scheduled --overwrite would rebuild everything every night"
    (train_args,) = _cli_calls(_train_job())
    tns = _parsed(train_args)
    cfg = load_config(mf.repo_config(tns.config), tns.overrides)
    assert ns.output == cfg.data.shards
    assert (ns.resize_to, ns.crop_size, ns.rows_per_shard) == (
        cfg.preprocess.resize_to,
        cfg.preprocess.crop_size,
        cfg.preprocess.rows_per_shard,
    )


# --- job lifecycle -----------------------------------------------------------------------------


def test_train_job_lifecycle() -> None:
    spec = _train_job()["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert 0 < spec["ttlSecondsAfterFinished"] <= 3600
    assert spec["backoffLimit"] == 0  # a retry would train from scratch in a new MLflow run
    assert spec["submitterConfig"]["backoffLimit"] >= 1
    assert spec.get("submissionMode", "K8sJobMode") == "K8sJobMode"
    assert "clusterSelector" not in spec  # own cluster, see the comment in the manifest


def test_cron_schedule_is_nightly_and_runs_cannot_overlap() -> None:
    doc = _cron()
    spec, job = doc["spec"], doc["spec"]["jobTemplate"]
    minute, hour, dom, month, dow = spec["schedule"].split()
    assert minute.isdigit() and hour.isdigit() and (dom, month, dow) == ("*", "*", "*")
    assert "TZ" not in spec["schedule"] and spec.get("timeZone")  # KubeRay rejects CRON_TZ=
    assert len(mf.name_of(doc)) <= 30  # child RayJob/RayCluster names are derived from it
    assert job["shutdownAfterJobFinishes"] is True
    # No concurrencyPolicy in the CRD: the deadline is shorter than the 24 h interval, and
    # the entrypoint holds a non-blocking lock on the shared volume.
    assert 0 < job["activeDeadlineSeconds"] < 24 * 3600
    argv = shlex.split(job["entrypoint"])
    assert argv[0] == "flock" and ("--nonblock" in argv or "-n" in argv)
    assert argv.index("perceiver-pipeline") > argv.index("flock")
    lock = next(a for a in argv[1:] if a.startswith("/"))
    assert lock.startswith(SHARED_MOUNT + "/")


# --- cluster shape ---------------------------------------------------------------------------


@pytest.mark.parametrize("m", RAY, ids=lambda m: m.label)
def test_head_runs_no_work_and_serves_the_dashboard(m: mf.Manifest) -> None:
    for where, spec in mf.ray_cluster_specs(m.doc):
        params = spec["headGroupSpec"]["rayStartParams"]
        assert params.get("num-cpus") == "0", where
        assert params.get("dashboard-host") == "0.0.0.0", where


@pytest.mark.parametrize("m", RAY, ids=lambda m: m.label)
def test_every_ray_pod_mounts_the_shared_volume_and_runs_as_non_root(m: mf.Manifest) -> None:
    for where, spec in mf.ray_cluster_specs(m.doc):
        for group, template in mf.group_templates(spec):
            pod = template["spec"]
            claims = {
                v["name"]: v["persistentVolumeClaim"]["claimName"]
                for v in pod.get("volumes", [])
                if "persistentVolumeClaim" in v
            }
            ray = pod["containers"][0]
            mounts = {vm["mountPath"]: vm["name"] for vm in ray.get("volumeMounts", [])}
            assert claims.get(mounts.get(SHARED_MOUNT, "")) == SHARED_CLAIM, (where, group)
            assert "/dev/shm" in mounts, (where, group)
            assert pod["securityContext"]["runAsNonRoot"] is True, (where, group)
            res = ray["resources"]
            assert res["requests"]["cpu"] and res["limits"]["memory"], (where, group)


def test_shared_claim_is_read_write_many() -> None:
    pvc = _one(KUBERAY, "PersistentVolumeClaim")
    assert mf.name_of(pvc) == SHARED_CLAIM
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert not ks.errors(pvc["spec"], ks.pvc_spec_schema())


def _gpu_groups(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        g
        for g in spec.get("workerGroupSpecs", [])
        if "nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"]["limits"]
    ]


def _cpus(quantity: str | int) -> float:
    q = str(quantity)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def test_gpu_workers_fit_the_imagenet_training_config() -> None:
    from pipelines.tasks import load_config

    (args,) = _cli_calls(_train_job())
    ns = _parsed(args)
    cfg = load_config(mf.repo_config(ns.config), ns.overrides)
    assert cfg.train.use_gpu
    for doc in (_train_job(), _one(KUBERAY, "RayCluster")):
        (_, spec), *_ = mf.ray_cluster_specs(doc)
        (gpu,) = _gpu_groups(spec)
        pod = gpu["template"]["spec"]
        limits = pod["containers"][0]["resources"]["limits"]
        assert str(limits["nvidia.com/gpu"]) == "1"
        assert _cpus(limits["cpu"]) >= cfg.train.cpus_per_worker
        assert gpu["maxReplicas"] >= cfg.train.num_workers
        assert pod.get("tolerations") and pod.get("nodeSelector")
    (_, job_spec), *_ = mf.ray_cluster_specs(_train_job())
    (gpu,) = _gpu_groups(job_spec)
    assert gpu["replicas"] == gpu["minReplicas"] == cfg.train.num_workers


def test_cron_cluster_has_no_gpus() -> None:
    (_, spec), *_ = mf.ray_cluster_specs(_cron())
    assert not _gpu_groups(spec)


# --- the image ---------------------------------------------------------------------------------


def test_dockerfile_matches_the_project() -> None:
    text = mf.DOCKERFILE.read_text()
    instr = mf.dockerfile_instructions(text)
    words = [w for w, _ in instr]
    args = dict(a.split("=", 1) for w, a in instr if w == "ARG" and "=" in a)
    assert args["TORCH_VERSION"] == _pyproject_pin("torch")
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    base = args["PYTHON_IMAGE"]
    assert base.startswith("python:3.11") and mf.image_is_pinned(base)
    assert ("FROM", "${PYTHON_IMAGE}") in instr
    # Everything the package build needs is copied, and exists.
    copied = [a.split()[:-1] for w, a in instr if w == "COPY"]
    sources = {s.rstrip("/") for srcs in copied for s in srcs}
    assert {"pyproject.toml", "README.md", "perceiver", "preprocessing", "pipelines"} <= sources
    for s in sources:
        assert (mf.REPO / s).exists(), s
    assert ("COPY", "pipelines/configs/ /app/configs/") in instr  # --config /app/configs/...
    assert ("COPY", "pipelines/workflows/ /app/workflows/") in instr  # workflow run /app/...
    # The MLflow server's auth extra, PostgreSQL driver and S3 client, pinned, by default.
    extra = dict(p.split("==") for p in args["EXTRA_PIP_PACKAGES"].strip('"').split())
    assert {"mlflow[auth]", "psycopg2-binary", "boto3"} <= extra.keys(), extra
    assert extra["mlflow[auth]"] == _pyproject_pin("mlflow")
    assert all(re.fullmatch(r"\d+(\.\d+)+", v) for v in extra.values()), extra
    assert any("${EXTRA_PIP_PACKAGES}" in a for w, a in instr if w == "RUN" and "pip install" in a)
    # Non-root, numerically, after the installs.
    users = [a for w, a in instr if w == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert words.index("USER") > max(
        i for i, (w, a) in enumerate(instr) if "pip install" in a and "PREBUILD" not in a
    )
    assert re.search(r"TORCH_EXTENSIONS_DIR=/\S+", text)
    assert "wget" in text  # KubeRay's default probes call wget
    ignore = (mf.DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in ignore and "!pipelines" in ignore


def test_yaml_in_deploy_is_plain_yaml() -> None:
    """No anchors/aliases or duplicate keys: kubectl and kustomize read the same as PyYAML."""

    class StrictLoader(yaml.SafeLoader):
        pass

    def no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        keys = [loader.construct_object(k) for k, _ in node.value]
        dup = {k for k in keys if keys.count(k) > 1}
        assert not dup, f"duplicate keys {dup} at line {node.start_mark.line + 1}"
        return loader.construct_mapping(node)

    StrictLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
        no_duplicates,  # type: ignore[arg-type]
    )
    for path in sorted(mf.DEPLOY.rglob("*.yaml")):
        text = path.read_text()
        assert not re.search(r"(^|\s)[&*][A-Za-z_]", text), f"{path}: YAML anchor/alias"
        list(yaml.load_all(text, Loader=StrictLoader))
