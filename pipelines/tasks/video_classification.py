"""Video classification (class folders of clips, UCF-101, Kinetics labels): clips -> a label.

Shards: ``frames`` uint8 (T, S, S, 3), ``label`` int64 (``preprocess --modality video``).
Augmentation, on the worker: a random span of ``model.video_shape``'s T frames when the shards
hold more, a random spatial crop of its (H, W) when they are larger, and a random horizontal
flip; evaluation takes the central span and crop. Loss: cross-entropy with label smoothing.
Metrics: ``val_top1`` (promotion, higher wins), ``val_top5``, ``val_loss``. Pictures: frame
strips with true and predicted labels, and a confusion matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from perceiver.config import VideoClassifierConfig
from perceiver.config.base import StrictModel
from pipelines.config.sections import PipelineConfigBase
from pipelines.tasks.base import Batch, Records, random_crop
from pipelines.tasks.classification import ClassificationLoss, ClassificationTask, predicted
from preprocessing.config import VideoPreprocessConfig


class VideoAugment(StrictModel):
    random_crop: bool = Field(True, description="random frame spans and spatial crops")
    flip: bool = Field(True, description="random horizontal flips in training")


class VideoClassificationConfig(PipelineConfigBase):
    task: Literal["video_classification"] = "video_classification"
    model: VideoClassifierConfig
    preprocess: VideoPreprocessConfig = VideoPreprocessConfig()
    loss: ClassificationLoss = ClassificationLoss()
    augment: VideoAugment = VideoAugment()

    @model_validator(mode="after")
    def _model_fits_the_shards(self) -> VideoClassificationConfig:
        frames, height, width, channels = self.model.video_shape
        p = self.preprocess
        if channels != 3 or self.model.channels_first:
            raise ValueError(
                f"model.video_shape={self.model.video_shape} (channels_first="
                f"{self.model.channels_first}): the shards hold (T, H, W, 3) RGB clips"
            )
        if frames > p.num_frames or height > p.size or width > p.size:
            raise ValueError(
                f"model.video_shape={self.model.video_shape} does not fit the shards' clips of "
                f"preprocess.num_frames={p.num_frames} frames of {p.size}x{p.size}"
            )
        return self


class VideoClassification(ClassificationTask):
    name: ClassVar[str] = "video_classification"
    modality: ClassVar[str] = "video"
    columns: ClassVar[dict[str, str]] = {"frames": "uint8", "label": "int64"}
    config: ClassVar[type[Any]] = VideoClassificationConfig
    input_column: ClassVar[str | None] = "frames"

    @property
    def shape(self) -> tuple[int, int, int]:
        frames, height, width, _ = self.cfg.model.video_shape
        return frames, height, width

    def check_shard_shapes(self, manifest: Any, shards: str) -> None:
        super().check_shard_shapes(manifest, shards)
        stored = (manifest.config.get("num_frames"), manifest.config.get("size"))
        frames, height, width = self.shape
        if None not in stored and (frames > stored[0] or height > stored[1] or width > stored[1]):
            raise ValueError(
                f"model.video_shape={self.cfg.model.video_shape} but the shards in {shards!r} "
                f"hold {stored[0]} frames of {stored[1]}x{stored[1]}"
            )

    def input_positions(self) -> int:
        grid = np.array(self.shape) // np.array(self.cfg.model.patch_shape)
        return int(np.prod(grid))

    def input_crop(self) -> dict[int, int]:
        frames, height, width = self.shape
        return {1: frames, 2: height, 3: width}  # (B, T, H, W, 3)

    def train_inputs(self, batch: Batch, rng: np.random.Generator) -> Batch:
        clips = batch["frames"]  # (B, T, S, S, 3)
        frames, height, width = self.shape
        out = np.empty((len(clips), frames, height, width, 3), dtype=clips.dtype)
        for i, clip in enumerate(clips):
            if self.cfg.augment.random_crop:
                start = int(rng.integers(0, clip.shape[0] - frames + 1))
                (crop,) = random_crop([clip[start : start + frames]], (height, width), rng, (1, 2))
            else:
                crop = self.eval_inputs({"frames": clip[None]})["frames"][0]
            out[i] = crop[:, :, ::-1] if self.cfg.augment.flip and rng.random() < 0.5 else crop
        return {**batch, "frames": out}

    def model_inputs(self, batch: Mapping[str, Any]) -> Any:
        return batch["frames"]  # (B, T, H, W, 3) uint8

    def pictures(
        self, examples: Batch, outputs: Any, records: Records, label_names: list[str]
    ) -> dict[str, bytes]:
        from pipelines.figures import frame_strips_png

        strips = frame_strips_png(
            examples["frames"], examples["label"], predicted(outputs), label_names
        )
        return {
            "confusion_val.png": self.confusion_png(records, label_names),
            "frames_val.png": strips,
        }
