"""The sections every pipeline config has, whatever its task.

A pipeline config is one task's config (``pipelines.tasks``): these shared sections, plus the
task's ``model`` (its ``perceiver.config`` class), ``preprocess`` (its modality's
``preprocessing.config`` class) and, where the task has them, ``loss`` and ``augment``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from perceiver.config.base import StrictModel


class DataConfig(StrictModel):
    """Where the preprocessed shards are (the output of ``perceiver-pipeline preprocess``)."""

    shards: Path = Field(Path("demo-output/shards"), description="folder with manifest.json")
    train_split: str = Field("train", description="manifest split used for training")
    val_split: str = Field("val", description="manifest split used for evaluation")


class OptimizerConfig(StrictModel):
    """AdamW (no weight decay on norms, biases, latents and position tables), linear
    warm-up, then cosine decay to ``min_lr``."""

    lr: float = Field(1e-3, gt=0.0, description="peak learning rate")
    min_lr: float = Field(0.0, ge=0.0, description="learning rate at the last step")
    weight_decay: float = Field(0.01, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(0, ge=0, description="linear warm-up, in optimizer steps")

    @model_validator(mode="after")
    def _min_below_peak(self) -> OptimizerConfig:
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr={self.min_lr} must not exceed lr={self.lr}")
        return self


class DeepSpeedSettings(StrictModel):
    """The DeepSpeed config is built from these (``pipelines.training.deepspeed_config``)."""

    zero_stage: Literal[0, 1, 2, 3] = Field(2, description="ZeRO stage 0-3")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16 needs hardware support (GPU, or a CPU with AVX512-BF16)"
    )
    micro_batch_size: int = Field(8, ge=1, description="samples per worker per step")
    gradient_accumulation_steps: int = Field(1, ge=1)
    gradient_clipping: float = Field(1.0, ge=0.0, description="max grad norm (0 = off)")


class TrainConfig(StrictModel):
    """Ray Train's TorchTrainer: workers, resources, epochs, checkpoints, validation."""

    num_workers: int = Field(2, ge=1)
    cpus_per_worker: float = Field(1.0, gt=0.0, description="CPUs reserved per worker")
    use_gpu: bool = Field(False, description="one GPU per worker, NCCL backend")
    epochs: int = Field(5, ge=1)
    seed: int = 0
    storage_path: Path = Field(
        Path("demo-output/ray_results"), description="Ray Train storage (shared on clusters)"
    )
    run_name: str | None = Field(
        None, description="Ray Train run name; rerunning a name resumes it (default: generated)"
    )
    checkpoints_to_keep: int = Field(2, ge=1, description="best ones by the task's metric")
    checkpoint_every_steps: int = Field(
        0, ge=0, description="also checkpoint every N optimizer steps (0: end of epochs only)"
    )
    eval_every_epochs: int = Field(
        1, ge=0, description="score the val split every N epochs (0: never during training)"
    )
    max_failures: int = Field(0, ge=-1, description="worker-group restarts (-1 = unlimited)")
    log_every_steps: int = Field(1, ge=1, description="per-step metrics to MLflow every N steps")
    system_metrics_seconds: float = Field(
        10.0, ge=0.0, description="MLflow system metrics sampling interval (0: off)"
    )
    shuffle_rows: int = Field(1024, ge=1, description="rows per shuffle window of the input")
    prefetch_batches: int = Field(4, ge=1, description="batches read ahead per worker")


class EvalConfig(StrictModel):
    batch_size: int = Field(32, ge=1, description="rows per batch-inference call")
    pictures: int = Field(8, ge=0, description="examples drawn in the MLflow pictures")


class TrackingConfig(StrictModel):
    """MLflow: where runs go, what the model is called, and the promotion alias."""

    tracking_uri: str | None = Field(
        None, description="default: $MLFLOW_TRACKING_URI, else MLflow's default sqlite store"
    )
    experiment: str = "perceiver-io"
    model_name: str | None = Field(None, description="registered model (default: perceiver-<task>)")
    alias: str = Field("champion", description="alias moved to a challenger that wins")
    promotion_margin: float = Field(
        0.0, ge=0, description="how much the challenger must beat the champion by (metric units)"
    )


class PipelineConfigBase(StrictModel):
    """Every task's pipeline config: these sections, and the task's own (``pipelines.tasks``)."""

    data: DataConfig = DataConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    deepspeed: DeepSpeedSettings = DeepSpeedSettings()
    train: TrainConfig = TrainConfig()
    evaluate: EvalConfig = EvalConfig()
    tracking: TrackingConfig = TrackingConfig()
