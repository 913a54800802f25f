"""The pipeline's pydantic config, loaded from YAML with command-line overrides.

Every option has a dotted key (``train.epochs``, ``deepspeed.zero_stage``, ...) that
``--set KEY=VALUE`` overrides; values are parsed as YAML (``--set train.lr=3e-4``). Unknown
keys and bad values fail at load with the key named, before any cluster work starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from perceiver.config import ImageClassifierConfig
from preprocessing.config import ImagePreprocessConfig


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(Strict):
    """Where the preprocessed shards are (the output of ``perceiver-pipeline preprocess``)."""

    shards: Path = Field(Path("demo-output/shards"), description="folder with manifest.json")
    train_split: str = Field("train", description="manifest split used for training")
    val_split: str = Field("val", description="manifest split used for evaluation")


class OptimizerConfig(Strict):
    """AdamW, handed to ``deepspeed.initialize`` as a torch optimizer."""

    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(0, ge=0, description="linear warm-up steps (0 = none)")


class DeepSpeedSettings(Strict):
    """The DeepSpeed config is built from these (``pipelines.deepspeed_config``)."""

    zero_stage: Literal[0, 1, 2, 3] = Field(2, description="ZeRO stage 0-3")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16 needs hardware support (GPU, or a CPU with AVX512-BF16)"
    )
    micro_batch_size: int = Field(8, ge=1, description="samples per worker per step")
    gradient_accumulation_steps: int = Field(1, ge=1)
    gradient_clipping: float = Field(1.0, ge=0.0, description="max grad norm (0 = off)")


class TrainConfig(Strict):
    """Ray Train's TorchTrainer: workers, resources, epochs, checkpoints."""

    num_workers: int = Field(2, ge=1)
    cpus_per_worker: float = Field(
        1.0, gt=0.0, description="CPUs reserved per worker; leave some for Ray Data's reads"
    )
    use_gpu: bool = Field(False, description="one GPU per worker, NCCL backend")
    epochs: int = Field(5, ge=1)
    seed: int = 0
    storage_path: Path = Field(
        Path("demo-output/ray_results"), description="Ray Train storage (shared on clusters)"
    )
    run_name: str | None = Field(None, description="Ray Train run name (default: generated)")
    checkpoints_to_keep: int = Field(2, ge=1)
    max_failures: int = Field(0, ge=-1, description="worker-group restarts (-1 = unlimited)")
    log_every_steps: int = Field(1, ge=1, description="per-step metrics to MLflow every N steps")


class TrackingConfig(Strict):
    """MLflow: where runs go, what the model is called, and the promotion rule."""

    tracking_uri: str | None = Field(
        None, description="default: $MLFLOW_TRACKING_URI, else MLflow's default sqlite store"
    )
    experiment: str = "perceiver-io"
    model_name: str = "perceiver-image-classifier"
    alias: str = Field("champion", description="alias moved to a version that is not worse")
    metric: str = Field("val_top1", description="higher is better; compared for promotion")


class EvalConfig(Strict):
    batch_size: int = Field(32, ge=1)


class PipelineConfig(Strict):
    """Everything one pipeline run needs."""

    model: ImageClassifierConfig
    preprocess: ImagePreprocessConfig = ImagePreprocessConfig()
    data: DataConfig = DataConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    deepspeed: DeepSpeedSettings = DeepSpeedSettings()
    train: TrainConfig = TrainConfig()
    evaluate: EvalConfig = EvalConfig()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="after")
    def _image_matches_crop(self) -> PipelineConfig:
        crop = self.preprocess.crop_size
        if self.model.image_shape[:2] != (crop, crop):
            raise ValueError(
                f"model.image_shape={self.model.image_shape} does not match "
                f"preprocess.crop_size={crop}"
            )
        return self


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


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"invalid config {source}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        else:
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def load_config(
    path: Path | str | None = None,
    overrides: Iterable[str] = (),
    base: dict[str, Any] | None = None,
) -> PipelineConfig:
    """Load YAML (or ``base``), apply ``KEY=VALUE`` overrides, validate."""
    source = str(path) if path else "(built-in defaults)"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} not found")
        try:
            tree = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {str(p)!r} is not valid YAML: {exc}") from exc
        if not isinstance(tree, dict):
            raise ConfigError(f"config file {str(p)!r} must hold a mapping at top level")
    else:
        tree = dict(base or {})
    for key, value in parse_overrides(overrides):
        _set_dotted(tree, key, value)
    try:
        return PipelineConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from exc


def builtin_config_path(name: str) -> Path:
    """Path of a YAML config shipped inside the package (``pipelines/configs``)."""
    path = Path(__file__).parent / "configs" / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"no built-in config {name!r}; available: {available}")
    return path


def option_help() -> str:
    """One line per overridable key with its default, for ``--help``."""
    lines: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            key = f"{prefix}{name}"
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, key + ".")
                continue
            default = "required" if field.is_required() else repr(field.default)
            desc = f"  {field.description}" if field.description else ""
            lines.append(f"  {key} (default {default}){desc}")

    walk(PipelineConfig, "")
    return "\n".join(lines)


def env_tracking_uri() -> str | None:
    return os.environ.get("MLFLOW_TRACKING_URI") or None
