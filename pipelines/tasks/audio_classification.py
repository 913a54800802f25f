"""Audio classification (AudioSet): raw waveforms -> multi-hot labels over the label map.

Shards: ``audio`` float32 (S,) mono windows and ``labels`` uint8 multi-hot
(``preprocess --modality audio``). Augmentation, on the worker: a random window of the
model's ``num_samples`` when the shards hold longer ones; evaluation takes the central window.
Loss: binary cross-entropy with logits, one sigmoid per label. Metrics (the AudioSet papers'):
``val_mAP`` (promotion, higher wins: macro mean AP over the classes with a positive clip),
``val_auc``, ``val_dprime``, ``val_loss``. Pictures: the best and worst classes' AP, and
spectrograms of a few clips with their true and predicted labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from perceiver.config import AudioClassifierConfig
from perceiver.config.base import StrictModel
from pipelines.config.sections import PipelineConfigBase
from pipelines.metrics import multilabel
from pipelines.tasks.base import Batch, Records, Task
from preprocessing.config import AudioPreprocessConfig


class AudioLoss(StrictModel):
    pos_weight: float = Field(
        1.0, gt=0.0, description="weight of the positive labels in the BCE (AudioSet's are sparse)"
    )


SHOWN_THRESHOLD = 0.5  # a label counts as predicted in the pictures above this probability


class AudioAugment(StrictModel):
    random_crop: bool = Field(True, description="random windows of the model's length")


class AudioClassificationConfig(PipelineConfigBase):
    task: Literal["audio_classification"] = "audio_classification"
    model: AudioClassifierConfig
    preprocess: AudioPreprocessConfig = AudioPreprocessConfig()
    loss: AudioLoss = AudioLoss()
    augment: AudioAugment = AudioAugment()

    @model_validator(mode="after")
    def _model_fits_the_shards(self) -> AudioClassificationConfig:
        if self.model.num_audio_channels != 1:
            raise ValueError(
                f"model.num_audio_channels={self.model.num_audio_channels}: the shards hold mono"
            )
        if self.model.num_samples > self.preprocess.window_samples:
            raise ValueError(
                f"model.num_samples={self.model.num_samples} is longer than the "
                f"preprocess.window_samples={self.preprocess.window_samples} the shards hold"
            )
        return self


class AudioClassification(Task):
    name: ClassVar[str] = "audio_classification"
    modality: ClassVar[str] = "audio"
    columns: ClassVar[dict[str, str]] = {"audio": "float32", "labels": "uint8"}
    metric: ClassVar[str] = "val_mAP"
    higher_is_better: ClassVar[bool] = True
    config: ClassVar[type[Any]] = AudioClassificationConfig
    input_column: ClassVar[str | None] = "audio"

    def check_shard_shapes(self, manifest: Any, shards: str) -> None:
        self.check_classes(manifest, shards)
        stored = manifest.config.get("window_samples")
        if stored is not None and self.cfg.model.num_samples > stored:
            raise ValueError(
                f"model.num_samples={self.cfg.model.num_samples} but the shards in {shards!r} "
                f"hold windows of {stored} samples"
            )

    def input_positions(self) -> int:
        return self.cfg.model.num_samples // self.cfg.model.samples_per_patch

    def input_crop(self) -> dict[int, int]:
        return {1: self.cfg.model.num_samples}  # (B, S)

    def train_inputs(self, batch: Batch, rng: np.random.Generator) -> Batch:
        if not self.cfg.augment.random_crop:
            return self.eval_inputs(batch)
        audio = batch["audio"]  # (B, S)
        n = self.cfg.model.num_samples
        starts = rng.integers(0, audio.shape[1] - n + 1, size=len(audio))
        return {
            **batch,
            "audio": np.stack([a[s : s + n] for a, s in zip(audio, starts, strict=True)]),
        }

    def model_inputs(self, batch: Mapping[str, Any]) -> Any:
        return batch["audio"]  # (B, S) float32 in [-1, 1]

    def loss(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logits = model(self.model_inputs(batch)).float()  # (B, K)
        weight = torch.full((logits.shape[1],), self.cfg.loss.pos_weight, device=logits.device)
        loss = F.binary_cross_entropy_with_logits(
            logits, batch["labels"].float(), pos_weight=weight
        )
        return loss, {}

    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> Records:
        logits = model(self.model_inputs(batch)).float()  # (B, K)
        targets = batch["labels"].float()
        loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1)
        return {
            "scores": logits.numpy(),
            "targets": batch["labels"].numpy().astype(np.uint8),
            "loss": loss.numpy(),
        }

    def metrics(self, records: Records) -> dict[str, float]:
        result = multilabel.audioset_metrics(records["targets"], records["scores"])
        return {
            "val_mAP": result["mAP"],
            "val_auc": result["auc"],
            "val_dprime": result["dprime"],
            "val_loss": float(records["loss"].mean()),
        }

    def pictures(
        self, examples: Batch, outputs: Any, records: Records, label_names: list[str]
    ) -> dict[str, bytes]:
        from pipelines.figures.audio import class_ap_png, spectrograms_png

        ap = multilabel.per_class_ap(records["targets"], records["scores"])
        probs = torch.sigmoid(torch.as_tensor(outputs)).numpy()  # (n, K)
        threshold = SHOWN_THRESHOLD
        truth = [[label_names[k] for k in np.nonzero(row)[0]] for row in examples["labels"]]
        guess = [[label_names[k] for k in np.nonzero(row > threshold)[0]] for row in probs]
        rate = self.cfg.preprocess.sample_rate
        return {
            "class_ap_val.png": class_ap_png(ap, label_names),
            "spectrograms_val.png": spectrograms_png(examples["audio"], rate, truth, guess),
        }
