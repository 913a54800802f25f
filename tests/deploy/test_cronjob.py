"""deploy/kuberay/cronjob-workflow.yaml: the scheduled workflow as a batch/v1 CronJob that
submits to the long-lived RayCluster through the job API; and every ``perceiver-pipeline``
command in docs/deploy.md, parsed with the real CLI parser.

The ``workflow``, ``submit`` and ``jobs`` commands and pipelines/workflows/scheduled.yaml are
the CLI's side of this: until they exist, the tests that parse them fail saying so."""

from __future__ import annotations

import copy
import re
import shlex
from typing import Any

import pytest

from tests.deploy import manifests as mf

KUBERAY = mf.load(mf.KUBERAY)
DOCS = mf.REPO / "docs" / "deploy.md"
WORKFLOW = "/app/workflows/scheduled.yaml"
POD = "spec.jobTemplate.spec.template.spec"
Mutation = Any


def _cron() -> dict[str, Any]:
    return copy.deepcopy(mf.one(KUBERAY, "CronJob"))


def _cluster() -> dict[str, Any]:
    return mf.one(KUBERAY, "RayCluster")


def _secret_ref(entry: dict[str, Any]) -> tuple[str, str] | None:
    ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
    return (ref["name"], ref["key"]) if ref else None


def check_cron(doc: dict[str, Any]) -> list[str]:
    """The CronJob runs the scheduled workflow, one run at a time, against the RayCluster's
    head Service with the RayCluster's token, as non-root, from the project image."""
    problems = []
    spec = doc["spec"]
    if spec.get("concurrencyPolicy") != "Forbid":
        problems.append(f"concurrencyPolicy {spec.get('concurrencyPolicy')!r}, not Forbid")
    if not 0 < spec.get("startingDeadlineSeconds", 0) < 24 * 3600:
        problems.append("startingDeadlineSeconds missing or not below the 24 h interval")
    for limit in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        if not isinstance(spec.get(limit), int) or spec[limit] < 1:
            problems.append(f"{limit} missing or 0 (no logs to read after a run)")
    if "TZ" in spec["schedule"] or not spec.get("timeZone"):
        problems.append("schedule: use timeZone, not a TZ= prefix")
    job = spec["jobTemplate"]["spec"]
    if "activeDeadlineSeconds" in job:
        problems.append("activeDeadlineSeconds kills the client, not its Ray jobs")
    pod = job["template"]["spec"]
    if (pod.get("securityContext") or {}).get("runAsNonRoot") is not True:
        problems.append("pod is not runAsNonRoot")
    (c,) = pod["containers"]
    head_image = _cluster()["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
    repo, _, tag = c["image"].rpartition(":")
    if not mf.image_is_pinned(c["image"]) or repo != head_image.rpartition(":")[0]:
        problems.append(f"image {c['image']} is not the pinned project image")
    elif tag.split("-")[0] != head_image.rpartition(":")[2].split("-")[0]:
        problems.append(f"image {c['image']}: another version than the RayCluster's")
    env = mf.env_of(c)
    secret = _cluster()["spec"]["authOptions"]["secretName"]
    if _secret_ref(env.get("RAY_AUTH_TOKEN", {})) != (secret, "auth_token"):
        problems.append(f"RAY_AUTH_TOKEN does not come from the RayCluster's Secret {secret}")
    if env.get("MLFLOW_TRACKING_URI", {}).get("value") != "http://mlflow:5000":
        problems.append("MLFLOW_TRACKING_URI is not the MLflow Service")
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        if _secret_ref(env.get(name, {})) is None:
            problems.append(f"{name} does not come from a Secret")
    argv = [*c.get("command", []), *c.get("args", [])]
    head_svc = f"{mf.name_of(_cluster())}-head-svc"  # KubeRay's GenerateHeadServiceName
    expected = ["perceiver-pipeline", "workflow", "run", WORKFLOW]
    expected += ["--address", f"http://{head_svc}:8265"]
    if argv != expected:
        problems.append(f"command {shlex.join(argv)}, expected {shlex.join(expected)}")
    return problems


def test_cronjob_runs_the_scheduled_workflow_one_at_a_time() -> None:
    assert not check_cron(_cron())


BROKEN = [
    ("overlap-allowed", mf.set_at("spec.concurrencyPolicy", "Allow")),
    ("no-starting-deadline", mf.delete_at("spec.startingDeadlineSeconds")),
    ("no-failed-history", mf.set_at("spec.failedJobsHistoryLimit", 0)),
    ("deadline-on-client", mf.set_at("spec.jobTemplate.spec.activeDeadlineSeconds", 3600)),
    ("root", mf.set_at(f"{POD}.securityContext.runAsNonRoot", False)),
    (
        "latest",
        mf.set_at(
            f"{POD}.containers.0.image", "registry.example.com/perceiver/perceiver-pipeline:latest"
        ),
    ),
    (
        "other-version",
        mf.set_at(
            f"{POD}.containers.0.image",
            "registry.example.com/perceiver/perceiver-pipeline:0.0.9-cpu",
        ),
    ),
    (
        "token-of-another-secret",
        mf.set_at(f"{POD}.containers.0.env.0.valueFrom.secretKeyRef.name", "perceiver"),
    ),
    (
        "head-service-guessed",
        mf.set_at(f"{POD}.containers.0.command.5", "http://perceiver-head:8265"),
    ),
    (
        "ray-client-port",
        mf.set_at(f"{POD}.containers.0.command.5", "ray://perceiver-head-svc:10001"),
    ),
    (
        "plain-password",
        mf.set_at(f"{POD}.containers.0.env.3", {"name": "MLFLOW_TRACKING_PASSWORD", "value": "x"}),
    ),
]


@pytest.mark.parametrize("mutate", [b[1] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_cron_check_catches_a_broken_copy(mutate: Mutation) -> None:
    doc = _cron()
    mutate(doc)
    assert check_cron(doc)


def test_cronjob_command_parses_with_the_real_cli() -> None:
    (args,) = mf.cli_calls(_cron())
    assert not mf.check_cli_call(args)
    ns, _ = mf.parse_cli(args)
    assert ns.command == "workflow"
    assert ns.address == "http://perceiver-head-svc:8265"
    assert (mf.WORKFLOWS / "scheduled.yaml").is_file()  # package data and /app/workflows


def test_workflow_runs_on_the_clusters_shared_volume_and_shards() -> None:
    """The steps run on the RayCluster: their paths must be on its shared volume, and the
    shards the same as the RayCronJob writes and the RayJob reads (one layout, whichever
    scheduler is applied)."""
    from pipelines.workflows.spec import PreprocessStep, load_workflow

    (args,) = mf.cli_calls(_cron())
    ns, _ = mf.parse_cli(args)
    file = mf.workflow_file(str(ns.file))
    assert file is not None
    wf = load_workflow(file, ns.overrides, ns.input)
    (pre,) = [s for s in wf.spec.steps if isinstance(s, PreprocessStep)]
    mount = "/mnt/shared"
    for path in (pre.input, wf.pipeline.data.shards, wf.pipeline.train.storage_path):
        assert str(path).startswith(mount + "/"), path
    for _, template in mf.group_templates(_cluster()["spec"]):
        mounts = [vm["mountPath"] for vm in template["spec"]["containers"][0]["volumeMounts"]]
        assert mount in mounts
    (cron_args,) = mf.cli_calls(mf.one(KUBERAY, "RayCronJob"))
    cron_ns, _ = mf.parse_cli(cron_args)
    assert (cron_ns.input, cron_ns.output) == (pre.input, wf.pipeline.data.shards)
    (train_args,) = mf.cli_calls(mf.one(KUBERAY, "RayJob"))
    assert f"data.shards={wf.pipeline.data.shards}" in train_args


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("workflow run /app/workflows/nope.yaml", "not found in the repo"),
        ("workflow run pipelines/workflows/scheduled.yaml", "not under /app/workflows"),
        ("workflow rnu /app/workflows/scheduled.yaml", "does not parse"),
        (f"workflow run {WORKFLOW} --set train.epoch=1", "train.epoch"),
        (f"workflow run {WORKFLOW} --adress http://x:8265", "does not parse"),
        ("submit -- trian --config /app/configs/image_classification.yaml", "does not parse"),
        ("submit -- train --config /app/configs/nope.yaml", "not found"),
        ("jobs lst", "does not parse"),
    ],
)
def test_cli_check_catches_bad_workflow_submit_and_jobs_commands(
    command: str, expected: str
) -> None:
    problems = mf.check_cli_call(shlex.split(command))
    assert any(expected in p for p in problems), problems


def docs_commands(text: str) -> list[list[str]]:
    """Every ``perceiver-pipeline`` call in the fenced bash blocks of a Markdown text."""
    calls = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            if re.search(r"(^|\s)perceiver-pipeline(\s|$)", line):  # as a command word
                calls += mf.pipeline_invocations(shlex.split(line, comments=True))
    return calls


def test_docs_commands_parse_with_the_real_cli() -> None:
    calls = docs_commands(DOCS.read_text())
    used = {args[0] for args in calls if args}
    assert {"workflow", "submit", "jobs"} <= used, used
    for args in calls:
        assert not mf.check_cli_call(args), shlex.join(args)


def test_docs_check_catches_a_misspelled_command() -> None:
    text = "```bash\nperceiver-pipeline jobs lits \\\n  --address http://127.0.0.1:8265\n```\n"
    (args,) = docs_commands(text)
    assert args == ["jobs", "lits", "--address", "http://127.0.0.1:8265"]
    assert mf.check_cli_call(args)
