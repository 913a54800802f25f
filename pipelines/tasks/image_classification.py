"""Image classification (ImageNet layout): images -> one of ``num_classes`` labels.

Shards: ``image`` uint8 (S, S, 3), ``label`` int64 (``preprocess --modality image``).
Augmentation, on the worker: a random ``model.image_shape`` crop of each training image
(shards stored larger than the model's input, e.g. 256² shards and 224² crops) and a random
horizontal flip; evaluation takes the center crop. The model's Fourier positions are those
of its own input grid, so they are relative to the crop, as the Perceiver paper found best.
Loss: cross-entropy with label smoothing. Metrics: ``val_top1`` (promotion, higher wins),
``val_top5``, ``val_loss``. Pictures: a confusion matrix and a grid of predictions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from perceiver.config import ImageClassifierConfig
from perceiver.config.base import StrictModel
from pipelines.config.sections import PipelineConfigBase
from pipelines.tasks.base import Batch, Records, center_crop_axes, random_crop
from pipelines.tasks.classification import ClassificationLoss, ClassificationTask, predicted
from preprocessing.config import ImagePreprocessConfig


class ImageAugment(StrictModel):
    random_crop: bool = Field(
        True, description="train on random crops of the model's size (else center crops)"
    )
    flip: bool = Field(True, description="random horizontal flips in training")


class ImageClassificationConfig(PipelineConfigBase):
    task: Literal["image_classification"] = "image_classification"
    model: ImageClassifierConfig
    preprocess: ImagePreprocessConfig = ImagePreprocessConfig()
    loss: ClassificationLoss = ClassificationLoss()
    augment: ImageAugment = ImageAugment()

    @model_validator(mode="after")
    def _model_fits_the_shards(self) -> ImageClassificationConfig:
        height, width, channels = self.model.image_shape
        side = self.preprocess.crop_size
        if channels != 3 or self.model.channels_first:
            raise ValueError(
                f"model.image_shape={self.model.image_shape} (channels_first="
                f"{self.model.channels_first}): the shards hold (H, W, 3) RGB images"
            )
        if height > side or width > side:
            raise ValueError(
                f"model.image_shape={self.model.image_shape} is larger than the "
                f"preprocess.crop_size={side} images the shards hold"
            )
        return self


class ImageClassification(ClassificationTask):
    name: ClassVar[str] = "image_classification"
    modality: ClassVar[str] = "image"
    columns: ClassVar[dict[str, str]] = {"image": "uint8", "label": "int64"}
    config: ClassVar[type[Any]] = ImageClassificationConfig
    input_column: ClassVar[str | None] = "image"

    @property
    def size(self) -> tuple[int, int]:
        height, width, _ = self.cfg.model.image_shape
        return height, width

    def check_shard_shapes(self, manifest: Any, shards: str) -> None:
        super().check_shard_shapes(manifest, shards)
        stored = manifest.config.get("crop_size")
        if stored is not None and (self.size[0] > stored or self.size[1] > stored):
            raise ValueError(
                f"model.image_shape={self.cfg.model.image_shape} but the shards in {shards!r} "
                f"hold {stored}x{stored} images"
            )

    def input_positions(self) -> int:
        from perceiver.builders import image_adapter

        adapter = image_adapter(self.cfg.model)
        return int(np.prod(getattr(adapter, "grid_shape", self.size)))

    def train_inputs(self, batch: Batch, rng: np.random.Generator) -> Batch:
        images = batch["image"]  # (B, S, S, 3)
        out = np.empty((len(images), *self.size, 3), dtype=images.dtype)
        for i, image in enumerate(images):
            if self.cfg.augment.random_crop:
                (crop,) = random_crop([image], self.size, rng, axes=(0, 1))
            else:
                crop = center_crop_axes(image, {0: self.size[0], 1: self.size[1]})
            out[i] = crop[:, ::-1] if self.cfg.augment.flip and rng.random() < 0.5 else crop
        return {**batch, "image": out}

    def input_crop(self) -> dict[int, int]:
        return {1: self.size[0], 2: self.size[1]}  # (B, H, W, 3)

    def model_inputs(self, batch: Mapping[str, Any]) -> Any:
        return batch["image"]  # (B, H, W, 3) uint8; the model scales and normalises it

    def pictures(
        self, examples: Batch, outputs: Any, records: Records, label_names: list[str]
    ) -> dict[str, bytes]:
        from pipelines.figures import predictions_png

        grid = predictions_png(
            examples["image"], examples["label"], predicted(outputs), label_names
        )
        return {
            "confusion_val.png": self.confusion_png(records, label_names),
            "predictions_val.png": grid,
        }
