"""The trainable tasks, one module each, and the pipeline config: their union on ``task``.

| task | shards (``--modality``) | promotion metric |
| --- | --- | --- |
| ``image_classification`` | ``image`` | ``val_top1``, higher wins |
| ``audio_classification`` | ``audio`` | ``val_mAP``, higher wins |
| ``video_classification`` | ``video`` | ``val_top1``, higher wins |
| ``kinetics_autoencoding`` | ``kinetics`` | ``val_loss``, lower wins |
| ``optical_flow`` | ``autoflow`` | ``val_epe``, lower wins |

``load_config(path)`` reads a YAML that names its task; the model, preprocessing, loss and
augmentation sections are validated for that task, and a key of another task is refused by
name. ``task_for(cfg)`` is the task object the trainer and evaluator call.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from pipelines.config.loader import ConfigError, load_tree, validate
from pipelines.tasks.audio_classification import AudioClassification, AudioClassificationConfig
from pipelines.tasks.base import Task
from pipelines.tasks.image_classification import ImageClassification, ImageClassificationConfig
from pipelines.tasks.kinetics_autoencoding import KineticsAutoencoding, KineticsAutoencodingConfig
from pipelines.tasks.optical_flow import OpticalFlow, OpticalFlowPipelineConfig
from pipelines.tasks.video_classification import VideoClassification, VideoClassificationConfig

TASKS: dict[str, type[Task]] = {
    task.name: task
    for task in (
        ImageClassification,
        AudioClassification,
        VideoClassification,
        KineticsAutoencoding,
        OpticalFlow,
    )
}

AnyPipelineConfig = (
    ImageClassificationConfig
    | AudioClassificationConfig
    | VideoClassificationConfig
    | KineticsAutoencodingConfig
    | OpticalFlowPipelineConfig
)
PipelineConfig = Annotated[AnyPipelineConfig, Field(discriminator="task")]

CONFIGS: dict[str, type[BaseModel]] = {name: task.config for name, task in TASKS.items()}
CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"


def task_for(cfg: Any) -> Task:
    """The task object of a validated pipeline config."""
    return TASKS[cfg.task](cfg)


def key_owners(key: str) -> list[str]:
    """The tasks whose pipeline config has the dotted ``key``."""
    owners = []
    for name, config in CONFIGS.items():
        model: Any = config
        for part in key.split("."):
            fields = getattr(model, "model_fields", {})
            if part not in fields:
                break
            model = fields[part].annotation
        else:
            owners.append(name)
    return owners


def load_config(
    path: Path | str | None = None,
    overrides: Iterable[str] = (),
    base: dict[str, Any] | None = None,
) -> AnyPipelineConfig:
    """Load YAML (or ``base``), apply ``KEY=VALUE`` overrides, validate for its task.

    ``path`` is a file, or the name of a shipped config (``image_classification_debug``,
    with or without ``.yaml``) when no such file exists here."""
    tree, source = load_tree(resolve_config_path(path), overrides, base)
    config: AnyPipelineConfig = validate(PipelineConfig, tree, source, CONFIGS, key_owners)
    return config


def pipeline_config(data: dict[str, Any]) -> AnyPipelineConfig:
    """A config dumped with ``model_dump(mode="json")``, validated again (workers, MLflow)."""
    config: AnyPipelineConfig = validate(
        PipelineConfig, data, "(dumped config)", CONFIGS, key_owners
    )
    return config


def resolve_config_path(path: Path | str | None) -> Path | str | None:
    """``path`` if it is a file (or None); else the shipped config of that bare name."""
    if path is None or Path(path).is_file() or len(Path(path).parts) != 1:
        return path
    name = Path(path).name.removesuffix(".yaml")
    return CONFIGS_DIR / f"{name}.yaml" if (CONFIGS_DIR / f"{name}.yaml").is_file() else path


def builtin_config_path(name: str) -> Path:
    """Path of a YAML config shipped in ``pipelines/configs``."""
    path = CONFIGS_DIR / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))
        raise ConfigError(f"no built-in config {name!r}; available: {available}")
    return path


def option_help(task: str | None = None) -> str:
    """One line per config key with its default (of ``task``, or of every task), for --help."""
    lines: list[str] = []

    def walk(model: type[BaseModel], prefix: str, seen: set[str]) -> None:
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}"
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, key + ".", seen)
                continue
            if key in seen:
                continue
            seen.add(key)
            default = "required" if field.is_required() else repr(field.default)
            desc = f"  {field.description}" if field.description else ""
            lines.append(f"  {key} (default {default}){desc}")

    for name, config in CONFIGS.items():
        if task is not None and name != task:
            continue
        lines.append(f"task: {name}")
        walk(config, "", set())
    return "\n".join(lines)


__all__ = [
    "CONFIGS",
    "TASKS",
    "AnyPipelineConfig",
    "ConfigError",
    "PipelineConfig",
    "Task",
    "builtin_config_path",
    "load_config",
    "option_help",
    "pipeline_config",
    "resolve_config_path",
    "task_for",
]
