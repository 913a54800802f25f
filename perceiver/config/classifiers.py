"""Configs of the audio (AudioSet), video and point-cloud classifiers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from perceiver.config.base import StrictModel
from perceiver.config.blocks import ClassificationDecoderConfig, EncoderConfig


class AudioClassifierConfig(StrictModel):
    """Perceiver IO raw-audio classifier (AudioSet): (B, T) waveform -> (B, num_classes) logits.

    Samples are grouped into patches of ``samples_per_patch`` with 1D Fourier features of the
    patch index (``AudioInputAdapter``). AudioSet is multi-label: train the logits with
    ``BCEWithLogitsLoss`` (one sigmoid per label), not a softmax.
    """

    task: Literal["audio_classification"] = "audio_classification"
    num_samples: int = Field(30720, ge=1, description="waveform length T (48 kHz: 0.64 s)")
    samples_per_patch: int = Field(16, ge=1)
    num_audio_channels: int = Field(1, ge=1)
    num_frequency_bands: int = Field(64, ge=1)
    max_resolution: int | None = Field(
        None, ge=1, description="highest Fourier band at max_resolution / 2 (default: patches)"
    )
    num_classes: int = Field(527, ge=2, description="AudioSet has 527 labels")
    encoder: EncoderConfig = EncoderConfig()
    decoder: ClassificationDecoderConfig = ClassificationDecoderConfig()

    @model_validator(mode="after")
    def _patches_divide(self) -> AudioClassifierConfig:
        if self.num_samples % self.samples_per_patch:
            raise ValueError(
                f"samples_per_patch={self.samples_per_patch} must divide "
                f"num_samples={self.num_samples}"
            )
        return self


class VideoClassifierConfig(StrictModel):
    """Perceiver IO video classifier: (B, T, H, W, C) clips -> (B, num_classes) logits.

    Space-time patches with 3D Fourier features (``VideoInputAdapter``).
    """

    task: Literal["video_classification"] = "video_classification"
    video_shape: tuple[int, int, int, int] = Field(
        (16, 224, 224, 3), description="(frames T, height H, width W, channels C)"
    )
    patch_shape: tuple[int, int, int] = Field((1, 4, 4), description="(t, h, w) per position")
    num_frequency_bands: int = Field(32, ge=1)
    max_resolution: tuple[int, int, int] | None = Field(
        None, description="highest Fourier band per axis at max_resolution / 2 (default: grid)"
    )
    mean: tuple[float, ...] | None = Field(None, description="per-channel mean (with std)")
    std: tuple[float, ...] | None = Field(None, description="per-channel std (with mean)")
    channels_first: bool = Field(False, description="take (B, T, C, H, W) clips")
    num_classes: int = Field(..., ge=2)
    encoder: EncoderConfig = EncoderConfig()
    decoder: ClassificationDecoderConfig = ClassificationDecoderConfig()

    @model_validator(mode="after")
    def _patches_divide(self) -> VideoClassifierConfig:
        if min(self.video_shape) < 1 or min(self.patch_shape) < 1:
            raise ValueError(
                f"video_shape={self.video_shape} and patch_shape={self.patch_shape} must be "
                "positive"
            )
        if any(n % p for n, p in zip(self.video_shape[:3], self.patch_shape, strict=True)):
            raise ValueError(
                f"patch_shape={self.patch_shape} must divide (T, H, W)={self.video_shape[:3]}"
            )
        channels = self.video_shape[3]
        if (self.mean is None) != (self.std is None) or (
            self.mean is not None
            and self.std is not None
            and (len(self.mean) != channels or len(self.std) != channels)
        ):
            raise ValueError(
                f"mean={self.mean} and std={self.std}: give both or neither, one entry per "
                f"channel ({channels})"
            )
        return self


class PointCloudClassifierConfig(StrictModel):
    """Perceiver point-cloud classifier (ModelNet40): (B, N, 3) points -> (B, num_classes).

    Each point is its xyz coordinates plus their Fourier features
    (``PointCloudInputAdapter``); any number of points N, in any order.
    """

    task: Literal["point_cloud_classification"] = "point_cloud_classification"
    num_frequency_bands: int = Field(64, ge=1)
    max_resolution: int = Field(
        1120, ge=1, description="highest Fourier band at max_resolution / 2, every axis"
    )
    num_classes: int = Field(40, ge=2, description="ModelNet40 has 40 classes")
    encoder: EncoderConfig = EncoderConfig()
    decoder: ClassificationDecoderConfig = ClassificationDecoderConfig()
