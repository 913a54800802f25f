"""Offline validation of Kubernetes objects against the KubeRay CRD schemas.

The CRDs (``shared/kuberay-crds``, beside the checkout) hold OpenAPI v3 *structural* schemas.
A JSON Schema validator checks types, enums, patterns and required keys in them, but three
things the API server does are not JSON Schema, so this module adds them:

* Unknown keys. The schemas never set ``additionalProperties: false``; the API server prunes
  unknown fields instead, and ``kubectl apply`` (strict field validation) rejects them. So
  every object schema with ``properties`` and no ``additionalProperties`` /
  ``x-kubernetes-preserve-unknown-fields`` is made closed: a misspelled key is an error.
* ``x-kubernetes-int-or-string``: accepts an integer or a string (given an ``anyOf`` if the
  node lacks one), ``nullable``, and the ``int32``/``int64`` ranges of ``format``.
* ``x-kubernetes-list-type``: ``set`` items and ``map`` keys (``x-kubernetes-list-map-keys``,
  missing keys taking their schema default, e.g. a port's protocol TCP) must be unique.

CEL rules (``x-kubernetes-validations``) cannot be evaluated here: a manifest that sets a
field guarded by one gets an error saying so, so it never passes unchecked.

The CRD for RayCluster also embeds the full core/v1 schemas of a pod template, a Service
(``headService``) and a PersistentVolumeClaim spec (ephemeral volumes), which validate the
plain Kubernetes objects of ``deploy/mlflow`` the same way.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator, validators
from jsonschema.exceptions import ValidationError

CRD_DIR = Path(__file__).resolve().parents[3] / "shared" / "kuberay-crds"
CRD_FILES = {
    "RayCluster": "ray.io_rayclusters.yaml",
    "RayJob": "ray.io_rayjobs.yaml",
    "RayCronJob": "ray.io_raycronjobs.yaml",
    "RayService": "ray.io_rayservices.yaml",
}
INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}

Schema = dict[str, Any]
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def crd_dir() -> Path:
    if not CRD_DIR.is_dir():
        raise FileNotFoundError(
            f"KubeRay CRDs not found at {CRD_DIR}: CI keeps shared/kuberay-crds/ beside the "
            "checkout (see shared/kuberay-crds/SOURCE.md)"
        )
    return CRD_DIR


@functools.cache
def raw_crd_schema(kind: str, version: str = "v1") -> Schema:
    """The ``openAPIV3Schema`` of ``kind`` at ``version``, exactly as in the CRD file."""
    path = crd_dir() / CRD_FILES[kind]
    crd = yaml.load(path.read_text(), Loader=_Loader)
    if crd.get("kind") != "CustomResourceDefinition" or crd["spec"]["names"]["kind"] != kind:
        raise ValueError(f"{path} is not the CRD of {kind}")
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return v["schema"]["openAPIV3Schema"]
    raise KeyError(f"{path} has no version {version!r}")


_SUBSCHEMA = ("items", "additionalProperties", "not")
_SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf")


def structural(node: Schema) -> Schema:
    """A copy of a structural schema with the API server's rules made explicit (see module doc)."""
    out: Schema = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: structural(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA and isinstance(value, dict):
            out[key] = structural(value)
        elif key in _SUBSCHEMA_LISTS:
            out[key] = [structural(sub) for sub in value]
        else:
            out[key] = copy.deepcopy(value)
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


@functools.cache
def crd_schema(kind: str, version: str = "v1") -> Schema:
    """``structural(raw_crd_schema(kind))``, computed once."""
    return structural(raw_crd_schema(kind, version))


def _format(validator: Any, fmt: str, instance: Any, schema: Schema) -> Iterator[ValidationError]:
    if fmt in INT_RANGES and validator.is_type(instance, "integer"):
        lo, hi = INT_RANGES[fmt]
        if not lo <= instance <= hi:
            yield ValidationError(f"{instance} is out of range for {fmt}")


def _list_type(
    validator: Any, list_type: str, instance: Any, schema: Schema
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "array"):
        return
    if list_type == "set":
        seen: list[Any] = []
        for item in instance:
            if item in seen:
                yield ValidationError(f"duplicate item {item!r} in a list of type set")
            seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        props = schema.get("items", {}).get("properties", {})
        seen_keys: set[tuple[Any, ...]] = set()
        for item in instance:
            if not isinstance(item, dict):
                continue
            key = tuple(item.get(k, props.get(k, {}).get("default")) for k in keys)
            if key in seen_keys:
                shown = ", ".join(f"{k}={v!r}" for k, v in zip(keys, key, strict=True))
                yield ValidationError(f"duplicate entry ({shown}) in a list keyed by {keys}")
            seen_keys.add(key)


def _cel(validator: Any, rules: list[Schema], instance: Any, schema: Schema) -> Iterator[Any]:
    shown = "; ".join(r.get("rule", "?") for r in rules)
    yield ValidationError(
        f"this field is guarded by CEL rule(s) that are not evaluated offline ({shown}); "
        "check them by hand and extend tests/deploy before using it"
    )


KubernetesValidator = validators.extend(
    Draft7Validator,
    {"format": _format, "x-kubernetes-list-type": _list_type, "x-kubernetes-validations": _cel},
)


def errors(instance: Any, schema: Schema) -> list[str]:
    """Every violation of ``schema`` (already ``structural``) as ``path: message``."""
    found = KubernetesValidator(schema).iter_errors(instance)
    out = []
    for e in sorted(found, key=lambda e: [str(p) for p in e.absolute_path]):
        path = "/".join(str(p) for p in e.absolute_path) or "(root)"
        out.append(f"{path}: {e.message}")
    return out


def validate_custom_resource(doc: dict[str, Any]) -> list[str]:
    """Validate a ray.io/v1 object against its CRD."""
    api, kind = doc.get("apiVersion"), doc.get("kind")
    if api != "ray.io/v1" or kind not in CRD_FILES:
        return [f"(root): not a known ray.io/v1 kind: apiVersion={api!r} kind={kind!r}"]
    return errors(doc, crd_schema(kind))


def _head_group() -> Schema:
    return crd_schema("RayCluster")["properties"]["spec"]["properties"]["headGroupSpec"]


def pod_template_schema() -> Schema:
    """core/v1 PodTemplateSpec (metadata subset + full PodSpec), from the RayCluster CRD."""
    return _head_group()["properties"]["template"]


def service_schema() -> Schema:
    """core/v1 Service (apiVersion, kind, metadata subset, spec), from the RayCluster CRD."""
    return _head_group()["properties"]["headService"]


def pvc_spec_schema() -> Schema:
    """core/v1 PersistentVolumeClaimSpec, from the PodSpec's ephemeral volume template."""
    volume = pod_template_schema()["properties"]["spec"]["properties"]["volumes"]["items"]
    return volume["properties"]["ephemeral"]["properties"]["volumeClaimTemplate"]["properties"][
        "spec"
    ]
