"""Loading a pipeline config: YAML, ``--set KEY=VALUE`` overrides, validation with clear errors.

Every option has a dotted key (``train.epochs``, ``deepspeed.zero_stage``, ...) that
``--set KEY=VALUE`` overrides; values are parsed as YAML (``--set optimizer.lr=3e-4``).
Unknown keys and bad values fail at load with the file and the key named, before any cluster
work starts; a key that belongs to another task's config says which task it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError


class ConfigError(ValueError):
    """A config that fails to load; the message names the file and the key."""


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    node = tree
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(overrides: Iterable[str]) -> list[tuple[str, Any]]:
    """``["train.epochs=3", ...]`` -> ``[("train.epochs", 3), ...]`` (values parsed as YAML)."""
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.epochs=3")
        parsed.append((key.strip(), yaml.safe_load(raw) if raw.strip() else None))
    return parsed


def read_yaml(path: Path | str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} not found")
    try:
        tree = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {exc}") from exc
    if not isinstance(tree, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping at top level")
    return tree


def format_errors(
    source: str, exc: ValidationError, task: str | None, owners: Callable[[str], list[str]]
) -> str:
    """One line per error, the dotted key first; ``owners(key)`` names the tasks whose
    configs have a key that this one refuses."""
    lines = [f"invalid config {source}:"]
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if task is not None and loc[:1] == [task]:
            loc = loc[1:]  # the union's tag
        key = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            others = [t for t in owners(key) if t != task]
            where = f" (a key of {', '.join(others)})" if others else ""
            lines.append(f"  {key}: unknown key for task {task}{where}")
        else:
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def validate(
    schema: Any,
    tree: dict[str, Any],
    source: str,
    tasks: dict[str, type[BaseModel]],
    owners: Callable[[str], list[str]],
) -> Any:
    """Validate ``tree`` as ``schema`` (the union of task configs, tagged by ``task``)."""
    task = tree.get("task")
    if task not in tasks:
        raise ConfigError(
            f"invalid config {source}: 'task' must be one of {sorted(tasks)}, got {task!r}"
        )
    try:
        return TypeAdapter(schema).validate_python(tree)
    except ValidationError as exc:
        raise ConfigError(format_errors(source, exc, task, owners)) from exc


def load_tree(
    path: Path | str | None, overrides: Iterable[str], base: dict[str, Any] | None
) -> tuple[dict[str, Any], str]:
    """The config tree from YAML (or ``base``) with overrides applied, and its source name."""
    source = str(path) if path else "(built-in defaults)"
    tree = read_yaml(path) if path is not None else dict(base or {})
    for key, value in parse_overrides(overrides):
        _set_dotted(tree, key, value)
    return tree, source
