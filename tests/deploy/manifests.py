"""Loading the manifests under ``deploy/`` and the policy checks that tests/deploy applies.

Each check returns a list of problems (empty = fine), so the tests can show that a check
passes on the real manifests *and* fails on a deliberately broken copy.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBERAY = DEPLOY / "kuberay"
MLFLOW = DEPLOY / "mlflow"
DOCKERFILE = DEPLOY / "Dockerfile"
CONFIGS = REPO / "pipelines" / "configs"
WORKFLOWS = REPO / "pipelines" / "workflows"
IMAGE_CONFIG_DIR = "/app/configs"  # where deploy/Dockerfile copies pipelines/configs
IMAGE_WORKFLOW_DIR = "/app/workflows"  # ... and pipelines/workflows
SHELL_SEPARATORS = {"&&", "||", ";", "|", "&"}

Doc = dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    path: Path
    index: int
    doc: Doc

    @property
    def label(self) -> str:
        rel = self.path.relative_to(REPO).as_posix()
        return f"{rel}#{self.index}:{self.doc.get('kind')}/{name_of(self.doc)}"


def name_of(doc: Doc) -> str:
    return str((doc.get("metadata") or {}).get("name", "?"))


def load(folder: Path) -> list[Manifest]:
    """Every non-empty YAML document in ``folder`` (recursively), in file order."""
    out = []
    for path in sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        out += [Manifest(path, i, d) for i, d in enumerate(docs)]
    return out


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.doc.get("kind") == kind]


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Doc:
    """The one object of ``kind`` (and ``name``) in ``manifests``."""
    found = [m for m in of_kind(manifests, kind) if name in (None, name_of(m.doc))]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[m.label for m in found]}"
    return found[0].doc


# --- Ray cluster specs, pod specs, containers ------------------------------------------------


def ray_cluster_specs(doc: Doc) -> list[tuple[str, Doc]]:
    """Every RayClusterSpec in a ray.io object, including the embedded ones."""
    spec = doc.get("spec") or {}
    kind = doc.get("kind")
    if kind == "RayCluster":
        return [("spec", spec)]
    if kind == "RayJob" and "rayClusterSpec" in spec:
        return [("spec.rayClusterSpec", spec["rayClusterSpec"])]
    if kind == "RayCronJob" and "rayClusterSpec" in spec.get("jobTemplate", {}):
        return [("spec.jobTemplate.rayClusterSpec", spec["jobTemplate"]["rayClusterSpec"])]
    if kind == "RayService" and "rayClusterConfig" in spec:
        return [("spec.rayClusterConfig", spec["rayClusterConfig"])]
    return []


def group_templates(cluster_spec: Doc) -> list[tuple[str, Doc]]:
    """(group name, pod template) of the head group and each worker group."""
    out = [("head", cluster_spec.get("headGroupSpec", {}).get("template", {}))]
    for g in cluster_spec.get("workerGroupSpecs", []):
        out.append((str(g.get("groupName")), g.get("template", {})))
    return out


def pod_specs(node: Any, where: str = "") -> Iterator[tuple[str, Doc]]:
    """Every pod spec (a mapping with a ``containers`` list) anywhere inside ``node``."""
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            yield where, node
        for key, value in node.items():
            yield from pod_specs(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from pod_specs(value, f"{where}[{i}]")


def containers(pod_spec: Doc) -> list[Doc]:
    return [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


# --- checks ----------------------------------------------------------------------------------


def check_token_auth(doc: Doc, secret_name: str | None = None) -> list[str]:
    """Token auth on in every Ray cluster spec of ``doc``; no container turns it off."""
    problems = []
    for where, spec in ray_cluster_specs(doc):
        auth = spec.get("authOptions") or {}
        if auth.get("mode") != "token":
            problems.append(f"{where}.authOptions.mode is {auth.get('mode')!r}, not 'token'")
        if secret_name is not None and auth.get("secretName") != secret_name:
            problems.append(
                f"{where}.authOptions.secretName is {auth.get('secretName')!r}, "
                f"expected the shared Secret {secret_name!r}"
            )
        for group, template in group_templates(spec):
            for c in containers(template.get("spec", {})):
                env = env_of(c)
                mode = env.get("RAY_AUTH_MODE", {}).get("value")
                if mode is not None and mode != "token":
                    problems.append(f"{where} {group}/{c.get('name')}: RAY_AUTH_MODE={mode!r}")
                if "value" in env.get("RAY_AUTH_TOKEN", {}):
                    problems.append(
                        f"{where} {group}/{c.get('name')}: RAY_AUTH_TOKEN written in plain text"
                    )
    # A RayJob with clusterSelector runs on an existing RayCluster, checked on its own.
    uses_existing = doc.get("kind") == "RayJob" and (doc.get("spec") or {}).get("clusterSelector")
    if doc.get("kind", "").startswith("Ray") and not ray_cluster_specs(doc) and not uses_existing:
        problems.append(f"{doc.get('kind')} without a cluster spec")
    return problems


def image_is_pinned(image: str) -> bool:
    """A digest, or an explicit tag other than ``latest``."""
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    return last.rsplit(":", 1)[1] not in ("", "latest")


def check_images(doc: Doc) -> list[str]:
    problems = []
    for where, pod in pod_specs(doc):
        for c in containers(pod):
            image = c.get("image", "")
            if not image_is_pinned(image):
                problems.append(f"{where} {c.get('name')}: image {image!r} is not pinned")
    return problems


def check_same_image_per_cluster(doc: Doc) -> list[str]:
    """Head and workers of one Ray cluster must run the same Ray/Python: same image."""
    problems = []
    for where, spec in ray_cluster_specs(doc):
        images = {
            (group, c.get("name")): c.get("image")
            for group, template in group_templates(spec)
            for c in template.get("spec", {}).get("containers", [])
        }
        if len(set(images.values())) != 1:
            problems.append(f"{where}: Ray containers use different images: {images}")
    return problems


def entrypoints(doc: Doc) -> list[tuple[str, str]]:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "RayJob" and "entrypoint" in spec:
        return [("spec.entrypoint", spec["entrypoint"])]
    if doc.get("kind") == "RayCronJob" and "entrypoint" in spec.get("jobTemplate", {}):
        return [("spec.jobTemplate.entrypoint", spec["jobTemplate"]["entrypoint"])]
    return []


def pipeline_invocations(argv: list[str]) -> list[list[str]]:
    """The argument lists of every ``perceiver-pipeline`` call in a (shell-split) command."""
    calls = []
    for i, word in enumerate(argv):
        if word == "perceiver-pipeline" or word.endswith("/perceiver-pipeline"):
            rest = []
            for w in argv[i + 1 :]:
                if w in SHELL_SEPARATORS:
                    break
                rest.append(w)
            calls.append(rest)
    return calls


def commands(doc: Doc) -> list[tuple[str, list[str]]]:
    """Every command line in ``doc``: Ray job entrypoints and container command + args."""
    out = [(where, shlex.split(text)) for where, text in entrypoints(doc)]
    for where, pod in pod_specs(doc):
        for c in containers(pod):
            argv = [*c.get("command", []), *c.get("args", [])]
            if argv:
                out.append((f"{where} {c.get('name')}", argv))
    return out


def cli_calls(doc: Doc) -> list[list[str]]:
    """The arguments of every ``perceiver-pipeline`` call in ``doc``."""
    return [call for _, argv in commands(doc) for call in pipeline_invocations(argv)]


def repo_config(path_in_image: Path) -> Path:
    """The repository file that deploy/Dockerfile copies to ``path_in_image``."""
    rel = path_in_image.relative_to(IMAGE_CONFIG_DIR)
    return CONFIGS / rel


def parse_cli(args: list[str]) -> tuple[Any, list[str]]:
    """(namespace, []) if ``args`` parse with the real CLI parser, else (None, [problem])."""
    from pipelines.cli import build_parser

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return build_parser().parse_args(args), []
    except SystemExit as exc:
        return None, [
            f"`perceiver-pipeline {shlex.join(args)}` does not parse (exit {exc.code}): "
            f"{stderr.getvalue().strip()}"
        ]


def positionals(*subcommands: str) -> list[str]:
    """The dests of the positional arguments of ``perceiver-pipeline SUBCOMMAND...``."""
    import argparse

    from pipelines.cli import build_parser

    parser = build_parser()
    for name in subcommands:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return [a.dest for a in parser._actions if not a.option_strings]


def workflow_file(path_or_name: str) -> Path | None:
    """The repository file that ``workflow run`` FILE names: a path in the image's workflow
    dir, or the bare name of a built-in workflow (package data in pipelines/workflows)."""
    if path_or_name.startswith(IMAGE_WORKFLOW_DIR + "/"):
        return WORKFLOWS / Path(path_or_name).relative_to(IMAGE_WORKFLOW_DIR)
    if "/" not in path_or_name:
        return WORKFLOWS / path_or_name
    return None


def check_cli_call(args: list[str]) -> list[str]:
    """``args`` parse with the real CLI parser; a config and its --set keys load, a workflow
    file exists in the image, and the command after ``submit ... --`` checks too."""
    from pipelines.tasks import ConfigError, load_config

    ns, problems = parse_cli(args)
    if ns is None:
        return problems
    if ns.command != args[0]:  # main() dispatches on args.command
        return [
            f"`perceiver-pipeline {shlex.join(args)}` parses, but args.command is "
            f"{ns.command!r}, not {args[0]!r}: a dest of the subcommand clobbers it"
        ]
    if ns.command == "submit":
        if "--" not in args:
            return [f"`perceiver-pipeline {shlex.join(args)}`: no `--` before the command"]
        return check_cli_call(args[args.index("--") + 1 :])
    if ns.command == "workflow" and args[1:2] == ["run"]:
        (dest,) = positionals("workflow", "run")
        file = str(getattr(ns, dest))
        repo_file = workflow_file(file)
        if repo_file is None:
            return [f"workflow {file} is not under {IMAGE_WORKFLOW_DIR} nor a built-in name"]
        if not repo_file.is_file():
            return [f"workflow {file}: {repo_file.relative_to(REPO)} not found in the repo"]
        from pipelines.workflows.spec import load_workflow

        try:
            load_workflow(repo_file, ns.overrides, ns.input)
        except ConfigError as exc:
            return [f"workflow {file} with {ns.overrides}: {exc}"]
    if ns.command == "preprocess":
        from pipelines.cli.data_cmd import PREPROCESS_OPTIONS
        from preprocessing.modalities import modality_config

        options = {k: getattr(ns, k) for k in PREPROCESS_OPTIONS if getattr(ns, k) is not None}
        try:
            modality_config(ns.modality, options)
        except ValueError as exc:
            return [f"`perceiver-pipeline {shlex.join(args)}`: {exc}"]
    config = getattr(ns, "config", None)
    if config is None:
        return []
    if not str(config).startswith(IMAGE_CONFIG_DIR + "/"):
        return [f"--config {config} is not under {IMAGE_CONFIG_DIR} (the image's config dir)"]
    try:
        load_config(repo_config(config), ns.overrides)
    except ConfigError as exc:
        return [f"--config {config} with {ns.overrides}: {exc}"]
    return []


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


# --- deliberately broken copies ----------------------------------------------------------------


def _walk(doc: Any, parts: list[str]) -> Any:
    node = doc
    for p in parts:
        node = node[int(p)] if isinstance(node, list) else node[p]
    return node


def set_at(path: str, value: Any) -> Callable[[Any], None]:
    """A mutation that sets the dotted ``path`` (list indices as numbers) to ``value``."""

    def mutate(doc: Any) -> None:
        *parents, last = path.split(".")
        node = _walk(doc, parents)
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def delete_at(path: str) -> Callable[[Any], None]:
    def mutate(doc: Any) -> None:
        *parents, last = path.split(".")
        node = _walk(doc, parents)
        del node[int(last) if isinstance(node, list) else last]

    return mutate


def append_at(path: str, value: Any) -> Callable[[Any], None]:
    def mutate(doc: Any) -> None:
        _walk(doc, path.split(".")).append(value)

    return mutate
