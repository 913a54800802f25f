"""deploy/: every object against a schema, no credential in any manifest, nothing exposed
outside the cluster, and what the NetworkPolicies let through (evaluated on the labels
KubeRay and the manifests put on pods). Each check is also shown to fail on a broken copy."""

from __future__ import annotations

import copy
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy import core_schema as cs
from tests.deploy import manifests as mf
from tests.deploy import policy as pp

ALL = mf.load(mf.DEPLOY)
KUBERAY = mf.load(mf.KUBERAY)
MLFLOW = mf.load(mf.MLFLOW)
NAMESPACE = "perceiver"
PART_OF = ("app.kubernetes.io/part-of", "perceiver-pipeline")
CRON_POD = "spec.jobTemplate.spec.template.spec"
Mutation = Any


def _doc(kind: str, name: str | None = None) -> dict[str, Any]:
    return copy.deepcopy(mf.one(ALL, kind, name))


def _broken(kind: str, name: str | None, *mutations: Mutation) -> dict[str, Any]:
    doc = _doc(kind, name)
    for mutate in mutations:
        mutate(doc)
    return doc


# --- schemas ---------------------------------------------------------------------------------


@pytest.mark.parametrize("m", ALL, ids=lambda m: m.label)
def test_every_object_is_valid_against_its_schema(m: mf.Manifest) -> None:
    problems = cs.validate_object(m.doc)
    assert not problems, f"{m.label}:\n" + "\n".join(problems)


BROKEN_SCHEMA = [
    (
        "cron-misspelled-key",
        "CronJob",
        None,
        mf.set_at("spec.concurrencypolicy", "Forbid"),
        "concurrencypolicy",
    ),
    (
        "cron-bad-policy",
        "CronJob",
        None,
        mf.set_at("spec.concurrencyPolicy", "Never"),
        "is not one of",
    ),
    (
        "cron-deadline-string",
        "CronJob",
        None,
        mf.set_at("spec.startingDeadlineSeconds", "3600"),
        "not of type 'integer'",
    ),
    (
        "cron-negative-history",
        "CronJob",
        None,
        mf.set_at("spec.failedJobsHistoryLimit", -1),
        "minimum",
    ),
    (
        "cron-no-schedule",
        "CronJob",
        None,
        mf.delete_at("spec.schedule"),
        "'schedule' is a required",
    ),
    (
        "job-misspelled-key",
        "CronJob",
        None,
        mf.set_at("spec.jobTemplate.spec.backofLimit", 0),
        "backofLimit",
    ),
    ("cron-pod-typo", "CronJob", None, mf.set_at(f"{CRON_POD}.containers.0.envv", []), "envv"),
    (
        "cron-restart-always",
        "CronJob",
        None,
        mf.set_at(f"{CRON_POD}.restartPolicy", "Always"),
        "Never or OnFailure",
    ),
    (
        "netpol-misspelled-key",
        "NetworkPolicy",
        "perceiver-ray",
        mf.set_at("spec.podSelektor", {}),
        "podSelektor",
    ),
    (
        "netpol-bad-protocol",
        "NetworkPolicy",
        "perceiver-ray",
        mf.set_at("spec.ingress.1.ports.0.protocol", "tcp"),
        "is not one of",
    ),
    (
        "netpol-port-range",
        "NetworkPolicy",
        "perceiver-ray",
        mf.set_at("spec.ingress.1.ports.0.port", 70000),
        "is not valid under any",
    ),
    (
        "netpol-bad-type",
        "NetworkPolicy",
        "mlflow",
        mf.set_at("spec.policyTypes", ["ingress"]),
        "is not one of",
    ),
    (
        "netpol-ipblock-and-selector",
        "NetworkPolicy",
        "mlflow",
        mf.append_at("spec.ingress.0.from", {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}),
        "ipBlock cannot",
    ),
    ("configmap-not-string", "ConfigMap", None, mf.set_at("data.x", 1), "not of type 'string'"),
    (
        "deployment-selector",
        "Deployment",
        None,
        mf.set_at("spec.selector.matchLabels", {"a": "b"}),
        "does not match",
    ),
    ("deployment-typo", "Deployment", None, mf.set_at("spec.replica", 1), "replica"),
    (
        "deployment-probe-typo",
        "Deployment",
        None,
        mf.set_at("spec.template.spec.containers.0.readinessProbe.httpGet.paht", "/health"),
        "paht",
    ),
    ("service-typo", "Service", None, mf.set_at("spec.portz", []), "portz"),
    ("namespace-typo", "Namespace", None, mf.set_at("metadata.label", {}), "label"),
    ("unknown-kind", "ConfigMap", None, mf.set_at("kind", "Secret"), "no schema"),
]


@pytest.mark.parametrize(
    ("kind", "name", "mutate", "expected"),
    [b[1:] for b in BROKEN_SCHEMA],
    ids=[b[0] for b in BROKEN_SCHEMA],
)
def test_broken_object_fails_its_schema(
    kind: str, name: str | None, mutate: Mutation, expected: str
) -> None:
    problems = cs.validate_object(_broken(kind, name, mutate))
    assert any(expected in p for p in problems), problems


# --- credentials -----------------------------------------------------------------------------


@pytest.mark.parametrize("m", ALL, ids=lambda m: m.label)
def test_no_manifest_holds_a_credential(m: mf.Manifest) -> None:
    assert not pp.check_no_credentials(m.doc)


def test_no_file_under_deploy_holds_a_credential_even_in_a_comment() -> None:
    for path in sorted(p for p in mf.DEPLOY.rglob("*") if p.is_file()):
        text = path.read_text()
        for what, pattern in pp.RAW_PATTERNS.items():
            assert not pattern.search(text), f"{path}: {what}: {pattern.search(text)}"


CRON_ENV = f"{CRON_POD}.containers.0.env"
MLFLOW_ENV = "spec.template.spec.containers.0.env"
BROKEN_CREDENTIALS = [
    (
        "plain-password",
        "CronJob",
        mf.append_at(CRON_ENV, {"name": "X_PASSWORD", "value": "hunter2hunter2"}),
        "must come from a Secret",
    ),
    (
        "token-value",
        "CronJob",
        mf.set_at(f"{CRON_ENV}.0", {"name": "RAY_AUTH_TOKEN", "value": "t"}),
        "must come from a Secret",
    ),
    (
        "key-from-configmap",
        "Deployment",
        mf.append_at(
            MLFLOW_ENV,
            {
                "name": "AWS_SECRET_ACCESS_KEY2",
                "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}},
            },
        ),
        "must come from a Secret",
    ),
    (
        "uri-password",
        "Deployment",
        mf.set_at(f"{MLFLOW_ENV}.0.value", "postgresql://mlflow:s3cr3t@db:5432/mlflow"),
        "a URI with a password",
    ),
    (
        "password-arg",
        "Deployment",
        mf.append_at("spec.template.spec.containers.0.args", "--db-password=hunter2"),
        "assignment",
    ),
    (
        "aws-key",
        "CronJob",
        mf.append_at(CRON_ENV, {"name": "S3_ID", "value": "AKIAIOSFODNN7EXAMPLE"}),
        "AWS access key",
    ),
    (
        "ini-admin-password",
        "ConfigMap",
        lambda d: d["data"].update({"basic_auth.ini": "admin_password = hunter2hunter2"}),
        "assignment",
    ),
    (
        "hex-token-annotation",
        "Service",
        mf.set_at("metadata.annotations", {"t": "ab" * 32}),
        "long hex",
    ),
    (
        "bearer",
        "CronJob",
        mf.append_at(f"{CRON_POD}.containers.0.command", "Bearer abcdef123456"),
        "bearer token",
    ),
    (
        "private-key",
        "ConfigMap",
        mf.set_at("data.key", "-----BEGIN RSA PRIVATE KEY-----\n..."),
        "private key",
    ),
    ("secret-object", "ConfigMap", mf.set_at("kind", "Secret"), "a Secret manifest"),
]


@pytest.mark.parametrize(
    ("kind", "mutate", "expected"),
    [b[1:] for b in BROKEN_CREDENTIALS],
    ids=[b[0] for b in BROKEN_CREDENTIALS],
)
def test_credential_check_catches_a_broken_copy(kind: str, mutate: Mutation, expected: str) -> None:
    problems = pp.check_no_credentials(_broken(kind, None, mutate))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "text",
    [
        "python@sha256:" + "0" * 64,  # an image digest
        "--backend-store-uri=$(MLFLOW_BACKEND_STORE_URI)",
        "postgresql://mlflow@postgres.example.com:5432/mlflow?sslmode=require",
        "http://perceiver-head-svc:8265",
    ],
)
def test_credential_check_lets_references_and_digests_through(text: str) -> None:
    doc = _broken("CronJob", None, mf.append_at(f"{CRON_POD}.containers.0.command", text))
    assert not pp.check_no_credentials(doc)
    token_path = {"name": "RAY_AUTH_TOKEN_PATH", "value": "/var/run/secrets/ray/token"}
    assert not pp.check_no_credentials(_broken("CronJob", None, mf.append_at(CRON_ENV, token_path)))


# --- exposure --------------------------------------------------------------------------------


@pytest.mark.parametrize("m", ALL, ids=lambda m: m.label)
def test_nothing_is_exposed_outside_the_cluster(m: mf.Manifest) -> None:
    assert not pp.check_not_exposed(m.doc)


BROKEN_EXPOSURE = [
    ("load-balancer", "Service", mf.set_at("spec.type", "LoadBalancer")),
    ("node-port", "Service", mf.set_at("spec.type", "NodePort")),
    ("external-ip", "Service", mf.set_at("spec.externalIPs", ["203.0.113.7"])),
    ("ray-head-node-port", "RayCluster", mf.set_at("spec.headGroupSpec.serviceType", "NodePort")),
    (
        "ray-head-service",
        "RayCluster",
        mf.set_at("spec.headGroupSpec.headService", {"spec": {"type": "LoadBalancer"}}),
    ),
    ("host-network", "CronJob", mf.set_at(f"{CRON_POD}.hostNetwork", True)),
    (
        "host-port",
        "Deployment",
        mf.set_at("spec.template.spec.containers.0.ports.0.hostPort", 5000),
    ),
]


@pytest.mark.parametrize(
    ("kind", "mutate"), [b[1:] for b in BROKEN_EXPOSURE], ids=[b[0] for b in BROKEN_EXPOSURE]
)
def test_exposure_check_catches_a_broken_copy(kind: str, mutate: Mutation) -> None:
    assert pp.check_not_exposed(_broken(kind, None, mutate))


# --- labels and NetworkPolicies --------------------------------------------------------------


def pod_templates(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod template (metadata + a spec with containers) inside ``node``."""
    if isinstance(node, dict):
        if isinstance((node.get("spec") or {}).get("containers"), list):
            yield where, node
        for key, value in node.items():
            yield from pod_templates(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from pod_templates(value, f"{where}.{i}")


def check_part_of_labels(doc: dict[str, Any]) -> list[str]:
    return [
        f"{where}: pod template without {PART_OF[0]}={PART_OF[1]}"
        for where, t in pod_templates(doc)
        if (t.get("metadata") or {}).get("labels", {}).get(PART_OF[0]) != PART_OF[1]
    ]


@pytest.mark.parametrize("m", ALL, ids=lambda m: m.label)
def test_every_pod_of_the_project_is_labelled_part_of(m: mf.Manifest) -> None:
    assert not check_part_of_labels(m.doc)


def test_part_of_check_catches_an_unlabelled_worker_group() -> None:
    path = "spec.workerGroupSpecs.1.template.metadata.labels"
    doc = _broken("RayCluster", None, mf.set_at(path, {"app.kubernetes.io/name": "x"}))
    assert check_part_of_labels(doc)


def _template_labels(doc: dict[str, Any], path: str) -> dict[str, str]:
    node: Any = doc
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return dict(node["metadata"]["labels"])


def _ray_pod(kind: str, node_type: str, cluster: str) -> dict[str, str]:
    """A pod's labels as KubeRay would set them, from the manifest's template labels."""
    doc = mf.one(KUBERAY, kind)
    (_, spec), *_ = mf.ray_cluster_specs(doc)
    groups = dict(mf.group_templates(spec))
    group = "headgroup" if node_type == "head" else "cpu"
    template = groups["head" if node_type == "head" else "cpu"]
    return pp.kuberay_pod_labels(cluster, node_type, group, template["metadata"]["labels"])


def _pods() -> dict[str, tuple[dict[str, str], str]]:
    """(labels, namespace) of the pods that talk to the Ray head and MLflow, and strangers."""
    cron = _template_labels(mf.one(KUBERAY, "CronJob"), "spec.jobTemplate.spec.template")
    mlflow = _template_labels(mf.one(MLFLOW, "Deployment"), "spec.template")
    return {
        "perceiver-head": (_ray_pod("RayCluster", "head", "perceiver"), NAMESPACE),
        "perceiver-worker": (_ray_pod("RayCluster", "worker", "perceiver"), NAMESPACE),
        "train-job-head": (_ray_pod("RayJob", "head", "imagenet-train-x7k2p"), NAMESPACE),
        "workflow-cronjob": (cron, NAMESPACE),
        "mlflow": (mlflow, NAMESPACE),
        "unlabelled-pod": ({"app": "something-else"}, NAMESPACE),
        "project-pod-elsewhere": (cron, "default"),
        "ray-pod-elsewhere": (_ray_pod("RayCluster", "worker", "perceiver"), "default"),
    }


ALLOW = pp.ALL_PORTS
RAY_HEAD_EXPECTED = {
    "perceiver-head": ALLOW,
    "perceiver-worker": ALLOW,  # GCS 6379, raylet, object manager, worker ports...
    "train-job-head": {("TCP", 8265)},
    "workflow-cronjob": {("TCP", 8265)},
    "mlflow": {("TCP", 8265)},
    "unlabelled-pod": set(),
    "project-pod-elsewhere": set(),
    "ray-pod-elsewhere": set(),
}
MLFLOW_EXPECTED = {
    **{name: {("TCP", 5000)} for name in RAY_HEAD_EXPECTED},
    "unlabelled-pod": set(),
    "project-pod-elsewhere": set(),
    "ray-pod-elsewhere": set(),
}


def check_policy(
    policy: dict[str, Any], target: str, expected: dict[str, Any], not_selected: list[str]
) -> list[str]:
    pods = _pods()
    spec = policy["spec"]
    problems = []
    if not pp.selects(spec.get("podSelector"), pods[target][0]):
        problems.append(f"does not select the {target} pod")
    for name in not_selected:
        if pp.selects(spec.get("podSelector"), pods[name][0]):
            problems.append(f"selects the {name} pod too")
    if spec.get("policyTypes") != ["Ingress"]:
        problems.append(f"policyTypes {spec.get('policyTypes')}: ingress only (egress open)")
    for name, want in expected.items():
        labels, namespace = pods[name]
        got = pp.allowed_ports(policy, pods[target][0], labels, namespace)
        if got != want:
            problems.append(f"{name} -> {target}: allowed {got}, expected {want}")
    return problems


def _ray_policy() -> dict[str, Any]:
    return copy.deepcopy(mf.one(KUBERAY, "NetworkPolicy"))


def _mlflow_policy() -> dict[str, Any]:
    return copy.deepcopy(mf.one(MLFLOW, "NetworkPolicy"))


def test_ray_policy_opens_8265_to_the_project_and_everything_to_the_cluster_only() -> None:
    head = _pods()["perceiver-head"][0]
    assert head["ray.io/cluster"] == "perceiver" and head["ray.io/node-type"] == "head"
    policy = _ray_policy()
    assert policy["metadata"]["namespace"] == NAMESPACE
    assert not check_policy(policy, "perceiver-head", RAY_HEAD_EXPECTED, ["train-job-head"])
    assert pp.selects(policy["spec"]["podSelector"], _pods()["perceiver-worker"][0])


def test_cronjob_address_is_the_head_service_on_an_allowed_port() -> None:
    (args,) = mf.cli_calls(mf.one(KUBERAY, "CronJob"))
    url = urllib.parse.urlsplit(args[args.index("--address") + 1])
    assert url.hostname == f"{mf.name_of(mf.one(KUBERAY, 'RayCluster'))}-head-svc"
    assert RAY_HEAD_EXPECTED["workflow-cronjob"] == {("TCP", url.port)}


def test_mlflow_policy_opens_5000_to_the_project_only() -> None:
    policy = _mlflow_policy()
    assert not check_policy(policy, "mlflow", MLFLOW_EXPECTED, ["perceiver-head", "unlabelled-pod"])
    (port,) = mf.one(MLFLOW, "Service")["spec"]["ports"]
    container = mf.one(MLFLOW, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ("TCP", named.get(port["targetPort"], port["targetPort"])) in MLFLOW_EXPECTED["mlflow"]


BROKEN_RAY_POLICY = [
    ("8265-rule-without-ports", mf.delete_at("spec.ingress.1.ports")),
    ("any-namespace", mf.set_at("spec.ingress.1.from.0.namespaceSelector", {})),
    (
        "selects-workers-only",
        lambda d: d["spec"]["podSelector"]["matchLabels"].update({"ray.io/node-type": "worker"}),
    ),
    ("no-rule-for-the-cluster", mf.delete_at("spec.ingress.0")),
    ("wrong-port", mf.set_at("spec.ingress.1.ports.0.port", 8266)),
    ("egress-closed", mf.set_at("spec.policyTypes", ["Ingress", "Egress"])),
    ("any-pod", mf.set_at("spec.ingress.1.from.0.podSelector", {})),
]


@pytest.mark.parametrize(
    "mutate", [b[1] for b in BROKEN_RAY_POLICY], ids=[b[0] for b in BROKEN_RAY_POLICY]
)
def test_ray_policy_check_catches_a_broken_copy(mutate: Mutation) -> None:
    policy = _ray_policy()
    mutate(policy)
    assert check_policy(policy, "perceiver-head", RAY_HEAD_EXPECTED, ["train-job-head"])


def test_mlflow_policy_check_catches_a_broken_copy() -> None:
    policy = _mlflow_policy()
    del policy["spec"]["ingress"][0]["from"]  # any source
    assert check_policy(policy, "mlflow", MLFLOW_EXPECTED, [])
