"""Security checks over the manifests: no credential in them, nothing exposed outside the
cluster, and what the NetworkPolicies let through (evaluated offline, on pod labels).

Each check returns a list of problems (empty = fine), like those in ``manifests``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tests.deploy.manifests import Doc, containers, pod_specs, ray_cluster_specs

# An env var with one of these in its name holds a credential: it must come from a Secret.
SECRET_NAME_PARTS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL")
# ... unless it names where a credential is (a file), not the credential itself.
LOCATION_SUFFIXES = ("_PATH", "_FILE", "_DIR")

# Text that is (or embeds) a credential, in any string of a manifest: env values, args,
# ConfigMap data, annotations. `$(VAR)` references are fine (Kubernetes fills them in).
ASSIGNMENT = re.compile(
    r"(?i)(pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key)[\w-]*\s*[=:]\s*"
    r"(?!\s*\$\()[^\s\"',;&]+"
)
# Patterns that hold in raw file text too (comments included); ASSIGNMENT does not, as any
# YAML key ending in "Token:" (automountServiceAccountToken: false) would match it.
RAW_PATTERNS = {
    "a URI with a password in it": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"),
    "an AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a bearer token": re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    "a long hex or base64 string": re.compile(
        r"(?<!sha256:)(?<![A-Za-z0-9+/])([0-9a-fA-F]{32,}|[A-Za-z0-9+/]{40,}={0,2})(?![A-Za-z0-9+/])"
    ),
}
CREDENTIAL_PATTERNS = {"a password/secret/token assignment": ASSIGNMENT, **RAW_PATTERNS}


def string_leaves(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(path, value) of every string in ``node``, keys included."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            yield f"{path} (key)", str(key)
            yield from string_leaves(value, path)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from string_leaves(value, f"{where}[{i}]")
    elif isinstance(node, str):
        yield where, node


def looks_secret(env_name: str) -> bool:
    name = env_name.upper()
    if name.endswith(LOCATION_SUFFIXES):
        return False
    return any(part in name for part in SECRET_NAME_PARTS)


def check_no_credentials(doc: Doc) -> list[str]:
    """No credential written into ``doc``: secret-looking env vars come from a Secret
    (secretKeyRef, not a value or a ConfigMap), and no string looks like a credential."""
    problems = []
    if doc.get("kind") == "Secret":
        problems.append("a Secret manifest: create Secrets with kubectl, never from the repo")
    for where, pod in pod_specs(doc):
        for c in containers(pod):
            for e in c.get("env", []):
                name = e.get("name", "")
                if looks_secret(name) and "secretKeyRef" not in (e.get("valueFrom") or {}):
                    problems.append(
                        f"{where} {c.get('name')}: env {name} must come from a Secret "
                        "(valueFrom.secretKeyRef)"
                    )
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    problems.append(f"{where} {c.get('name')}: envFrom a ConfigMap hides names")
    for path, text in string_leaves(doc):
        for what, pattern in CREDENTIAL_PATTERNS.items():
            if pattern.search(text):
                problems.append(f"{path}: looks like {what}: {text[:60]!r}")
    return problems


def check_not_exposed(doc: Doc) -> list[str]:
    """Nothing reachable from outside the cluster: no LoadBalancer/NodePort Service (plain or
    a RayCluster's head Service), no external IPs, no host network or host ports."""
    problems = []
    exposed = ("LoadBalancer", "NodePort")
    services: list[tuple[str, Any]] = []
    if doc.get("kind") == "Service":
        services.append(("spec", doc.get("spec")))
    for where, cluster in ray_cluster_specs(doc):
        head = cluster.get("headGroupSpec") or {}
        if head.get("serviceType") in exposed:
            problems.append(f"{where}.headGroupSpec.serviceType is {head['serviceType']}")
        head_service = (head.get("headService") or {}).get("spec")
        services.append((f"{where}.headGroupSpec.headService.spec", head_service))
    for where, svc in services:
        if not svc:
            continue
        if svc.get("type") in exposed:
            problems.append(f"{where}.type is {svc['type']}")
        if svc.get("externalIPs"):
            problems.append(f"{where}.externalIPs is set")
    for where, pod in pod_specs(doc):
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(flag):
                problems.append(f"{where}.{flag} is true")
        for c in containers(pod):
            for p in c.get("ports", []):
                if "hostPort" in p:
                    problems.append(f"{where} {c.get('name')}: hostPort {p['hostPort']}")
    return problems


# --- NetworkPolicy, evaluated offline --------------------------------------------------------


def kuberay_pod_labels(
    cluster: str, node_type: str, group: str, template_labels: dict[str, str]
) -> dict[str, str]:
    """The labels KubeRay v1.7 puts on a Ray pod: labelPod() in
    ray-operator/controllers/ray/common/pod.go. The template's labels override the defaults,
    except ray.io/node-type, ray.io/group and ray.io/cluster."""
    fixed = {"ray.io/cluster": cluster, "ray.io/node-type": node_type, "ray.io/group": group}
    labels = {
        "ray.io/is-ray-node": "yes",
        "ray.io/identifier": f"{cluster}-{node_type}",
        "app.kubernetes.io/name": "kuberay",
        "app.kubernetes.io/created-by": "kuberay-operator",
    }
    labels.update({k: v for k, v in template_labels.items() if k not in fixed})
    labels.update(fixed)
    return labels


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector semantics (an empty selector selects everything)."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


ALL_PORTS = "all"


def allowed_ports(
    policy: Doc,
    target: dict[str, str],
    source: dict[str, str],
    source_namespace: str,
    namespace_labels: dict[str, str] | None = None,
) -> set[Any] | str:
    """What ``policy`` lets a pod with labels ``source`` (in ``source_namespace``) open on a pod
    with labels ``target`` in the policy's namespace: ``ALL_PORTS``, a set of (protocol, port),
    or an empty set. A policy that does not select the target, or has no Ingress type, says
    nothing about it: ``ALL_PORTS`` (as if it did not exist)."""
    spec = policy.get("spec") or {}
    ns = policy["metadata"]["namespace"]
    types = spec.get("policyTypes") or ["Ingress"]
    if not selects(spec.get("podSelector"), target) or "Ingress" not in types:
        return ALL_PORTS
    ns_labels = {"kubernetes.io/metadata.name": source_namespace, **(namespace_labels or {})}
    ports: set[Any] = set()
    for rule in spec.get("ingress") or []:
        peers = rule.get("from")
        if peers:
            matched = False
            for peer in peers:
                if "ipBlock" in peer:
                    continue  # pod IPs are not modelled; no policy here uses ipBlock
                if "namespaceSelector" in peer:
                    ns_ok = selects(peer["namespaceSelector"], ns_labels)
                else:
                    ns_ok = source_namespace == ns
                pod_ok = selects(peer.get("podSelector"), source)
                matched = matched or (ns_ok and pod_ok)
            if not matched:
                continue
        if not rule.get("ports"):
            return ALL_PORTS
        for p in rule["ports"]:
            ports.add((p.get("protocol", "TCP"), p.get("port")))
    return ports
