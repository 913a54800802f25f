"""The task table: every task config in one pydantic union, discriminated by ``task``.

A config file or dict names its task (``task: optical_flow``) and is validated by that task's
class; a key of another task is refused by name (``extra="forbid"``). ``perceiver.builders``
builds the model of any member, so this union is the one list of tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_args

from pydantic import Field, TypeAdapter, ValidationError

from perceiver.config.classifiers import (
    AudioClassifierConfig,
    PointCloudClassifierConfig,
    VideoClassifierConfig,
)
from perceiver.config.flow import OpticalFlowConfig
from perceiver.config.image import ImageClassifierConfig
from perceiver.config.multimodal import MultimodalAutoencoderConfig
from perceiver.config.text import MaskedLMConfig, SequenceClassifierConfig

AnyTaskConfig = (
    ImageClassifierConfig
    | MaskedLMConfig
    | SequenceClassifierConfig
    | OpticalFlowConfig
    | AudioClassifierConfig
    | VideoClassifierConfig
    | PointCloudClassifierConfig
    | MultimodalAutoencoderConfig
)
TaskConfig = Annotated[AnyTaskConfig, Field(discriminator="task")]

TASK_CONFIGS: dict[str, type[Any]] = {
    cls.model_fields["task"].default: cls for cls in get_args(AnyTaskConfig)
}
"""Task name -> its config class, in the union's order."""

_ADAPTER: TypeAdapter[Any] = TypeAdapter(TaskConfig)
PRESETS_DIR = Path(__file__).parent / "presets"


def task_config(data: Any) -> AnyTaskConfig:
    """Validate a task config dict, choosing its class by its ``task`` key.

    ValueError, naming the task and the offending keys, when it does not validate.
    """
    if not isinstance(data, dict):
        raise ValueError(f"a task config must be a mapping, got {type(data).__name__}")
    task = data.get("task")
    if task not in TASK_CONFIGS:
        raise ValueError(f"unknown task {task!r}; known tasks: {sorted(TASK_CONFIGS)}")
    try:
        config: AnyTaskConfig = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ValueError(f"invalid {task} config: {describe_errors(exc, task)}") from exc
    return config


def describe_errors(exc: ValidationError, task: str | None = None) -> str:
    """One ``key: problem`` per error, keys dotted (``encoder.num_latents``); an unknown key
    is named as such. The union's tag (the task) is left out of the keys."""
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if task is not None and loc[:1] == [task]:
            loc = loc[1:]
        key = ".".join(loc) or "(top level)"
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        problems.append(f"{key}: {message}")
    return "; ".join(problems)


def load_task_config(path: str | Path) -> AnyTaskConfig:
    """Read a YAML (or JSON) task config file; see ``task_config``. Errors name the file.

    The shipped configs are in ``perceiver/config/presets`` (``shipped_configs()``).
    """
    import yaml

    file = Path(path)
    data = yaml.safe_load(file.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{file} must hold a mapping with a 'task' key, got {type(data).__name__}")
    try:
        return task_config(data)
    except ValueError as exc:
        raise ValueError(f"{file}: {exc}") from exc


def shipped_configs() -> dict[str, Path]:
    """Name (file stem) -> path of every YAML config shipped in ``perceiver/config/presets``."""
    return {p.stem: p for p in sorted(PRESETS_DIR.glob("*.yaml"))}
