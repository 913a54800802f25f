"""Offline validation of every object in ``deploy/``, whatever its kind.

``ray.io/v1`` objects go to their KubeRay CRD (``k8s_schema.validate_custom_resource``). For
the plain Kubernetes kinds there is no OpenAPI document here (no cluster, no ``kubernetes``
package), so this module reuses what the KubeRay CRDs embed and writes the rest by hand:

* from the CRDs (generated from k8s.io/api, so exact): the core/v1 PodTemplateSpec (full
  PodSpec), the Service, the PersistentVolumeClaimSpec, a LabelSelector, and ObjectMeta's
  subset (name, namespace, labels, annotations, finalizers);
* by hand, from the Kubernetes API reference (batch/v1, apps/v1, networking.k8s.io/v1, v1):
  the fields of CronJobSpec, JobTemplateSpec, JobSpec, DeploymentSpec, NetworkPolicySpec and
  its rules, peers and ports, ConfigMap and Namespace: names, types, enums, required keys.
  Every object is closed, like the CRD schemas in ``k8s_schema``: an unknown key is an error.
  Nested objects we do not use (podFailurePolicy, successPolicy) are only typed ``object``.

On top of the schemas, a few rules the API server enforces that are not expressible in them
(``_rules``): a Job's pods restart Never/OnFailure, a Deployment's selector matches its
template's labels, a NetworkPolicy peer is an ipBlock alone or pod/namespace selectors.
"""

from __future__ import annotations

import functools
from typing import Any

from tests.deploy import k8s_schema as ks

Schema = dict[str, Any]
INT32: Schema = {"type": "integer", "format": "int32"}
INT64: Schema = {"type": "integer", "format": "int64"}
NON_NEGATIVE_INT32: Schema = {**INT32, "minimum": 0}
BOOL: Schema = {"type": "boolean"}
STRING: Schema = {"type": "string"}
INT_OR_STRING: Schema = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
OPEN_OBJECT: Schema = {"type": "object"}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    out: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def const(value: str) -> Schema:
    return {"type": "string", "const": value}


def pod_template() -> Schema:
    return ks.pod_template_schema()


def object_meta() -> Schema:
    """ObjectMeta as the CRDs embed it (name, namespace, labels, annotations, finalizers)."""
    return pod_template()["properties"]["metadata"]


def label_selector() -> Schema:
    """metav1.LabelSelector (matchLabels, matchExpressions), from a pod affinity term."""
    spec = pod_template()["properties"]["spec"]["properties"]
    term = spec["affinity"]["properties"]["podAffinity"]["properties"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["items"]
    return term["properties"]["labelSelector"]


def top_level(api: str, kind: str, spec: Schema | None, **optional: Schema) -> Schema:
    """A top-level object; ``spec`` is required when given, ``optional`` fields are not."""
    props: dict[str, Schema] = {"apiVersion": const(api), "kind": const(kind)}
    props["metadata"] = object_meta()
    required: tuple[str, ...] = ("apiVersion", "kind", "metadata")
    if spec is not None:
        props["spec"] = spec
        required += ("spec",)
    props.update(optional)
    return obj(props, required)


def job_spec() -> Schema:
    return obj(
        {
            "activeDeadlineSeconds": {**INT64, "minimum": 1},
            "backoffLimit": NON_NEGATIVE_INT32,
            "backoffLimitPerIndex": NON_NEGATIVE_INT32,
            "completionMode": enum("NonIndexed", "Indexed"),
            "completions": NON_NEGATIVE_INT32,
            "managedBy": STRING,
            "manualSelector": BOOL,
            "maxFailedIndexes": NON_NEGATIVE_INT32,
            "parallelism": NON_NEGATIVE_INT32,
            "podFailurePolicy": OPEN_OBJECT,
            "podReplacementPolicy": enum("TerminatingOrFailed", "Failed"),
            "selector": label_selector(),
            "successPolicy": OPEN_OBJECT,
            "suspend": BOOL,
            "template": pod_template(),
            "ttlSecondsAfterFinished": NON_NEGATIVE_INT32,
        },
        ("template",),
    )


def cron_job() -> Schema:
    spec = obj(
        {
            "concurrencyPolicy": enum("Allow", "Forbid", "Replace"),
            "failedJobsHistoryLimit": NON_NEGATIVE_INT32,
            "jobTemplate": obj({"metadata": object_meta(), "spec": job_spec()}),
            "schedule": STRING,
            "startingDeadlineSeconds": {**INT64, "minimum": 0},
            "successfulJobsHistoryLimit": NON_NEGATIVE_INT32,
            "suspend": BOOL,
            "timeZone": STRING,
        },
        ("schedule", "jobTemplate"),
    )
    return top_level("batch/v1", "CronJob", spec)


def deployment() -> Schema:
    strategy = obj(
        {
            "type": enum("Recreate", "RollingUpdate"),
            "rollingUpdate": obj({"maxSurge": INT_OR_STRING, "maxUnavailable": INT_OR_STRING}),
        }
    )
    spec = obj(
        {
            "minReadySeconds": NON_NEGATIVE_INT32,
            "paused": BOOL,
            "progressDeadlineSeconds": INT32,
            "replicas": NON_NEGATIVE_INT32,
            "revisionHistoryLimit": NON_NEGATIVE_INT32,
            "selector": label_selector(),
            "strategy": strategy,
            "template": pod_template(),
        },
        ("selector", "template"),
    )
    return top_level("apps/v1", "Deployment", spec)


def network_policy() -> Schema:
    peer = obj(
        {
            "podSelector": label_selector(),
            "namespaceSelector": label_selector(),
            "ipBlock": obj({"cidr": STRING, "except": array(STRING)}, ("cidr",)),
        }
    )
    port = obj(
        {
            "protocol": enum("TCP", "UDP", "SCTP"),
            "port": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, STRING]},
            "endPort": {**INT32, "minimum": 1, "maximum": 65535},
        }
    )
    spec = obj(
        {
            "podSelector": label_selector(),
            "policyTypes": array(enum("Ingress", "Egress")),
            "ingress": array(obj({"from": array(peer), "ports": array(port)})),
            "egress": array(obj({"to": array(peer), "ports": array(port)})),
        },
        ("podSelector",),
    )
    return top_level("networking.k8s.io/v1", "NetworkPolicy", spec)


def config_map() -> Schema:
    data = {"type": "object", "additionalProperties": STRING}
    return top_level("v1", "ConfigMap", None, data=data, binaryData=data, immutable=BOOL)


def namespace() -> Schema:
    schema = top_level("v1", "Namespace", None)
    schema["properties"]["spec"] = obj({"finalizers": array(STRING)})
    return schema


def persistent_volume_claim() -> Schema:
    return top_level("v1", "PersistentVolumeClaim", ks.pvc_spec_schema())


SCHEMAS = {
    ("batch/v1", "CronJob"): cron_job,
    ("apps/v1", "Deployment"): deployment,
    ("networking.k8s.io/v1", "NetworkPolicy"): network_policy,
    ("v1", "ConfigMap"): config_map,
    ("v1", "Namespace"): namespace,
    ("v1", "PersistentVolumeClaim"): persistent_volume_claim,
    ("v1", "Service"): ks.service_schema,
}


@functools.cache
def schema_for(api: str, kind: str) -> Schema:
    return SCHEMAS[(api, kind)]()


def _labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _rules(doc: dict[str, Any]) -> list[str]:
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    problems = []
    if kind == "CronJob":
        pod = spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
        if pod.get("restartPolicy") not in ("Never", "OnFailure"):
            problems.append(
                "spec/jobTemplate/spec/template/spec/restartPolicy: a Job's pods need Never or "
                f"OnFailure, not {pod.get('restartPolicy')!r} (the default is Always)"
            )
    if kind == "Deployment":
        labels = spec.get("template", {}).get("metadata", {}).get("labels") or {}
        if not _labels_match(spec.get("selector") or {}, labels):
            problems.append("spec/selector: does not match spec/template/metadata/labels")
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate" and "rollingUpdate" in strategy:
            problems.append("spec/strategy: rollingUpdate is forbidden with type Recreate")
    if kind == "NetworkPolicy":
        for direction, key in (("ingress", "from"), ("egress", "to")):
            for i, rule in enumerate(spec.get(direction) or []):
                for j, peer in enumerate(rule.get(key) or []):
                    where = f"spec/{direction}/{i}/{key}/{j}"
                    if not peer:
                        problems.append(f"{where}: a peer needs a selector or an ipBlock")
                    if "ipBlock" in peer and len(peer) > 1:
                        problems.append(f"{where}: ipBlock cannot be combined with selectors")
    return problems


def validate_object(doc: dict[str, Any]) -> list[str]:
    """Every problem found in ``doc``, of any kind; an unknown kind is a problem too."""
    api, kind = doc.get("apiVersion"), doc.get("kind")
    if api == "ray.io/v1":
        return ks.validate_custom_resource(doc)
    if (api, kind) not in SCHEMAS:
        return [
            f"(root): no schema for apiVersion={api!r} kind={kind!r}; add one to "
            "tests/deploy/core_schema.py"
        ]
    return ks.errors(doc, schema_for(str(api), str(kind))) + _rules(doc)
