"""Pydantic config of a preprocessing run; its hash goes into the manifest."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FORMAT_VERSION = 1


class ImagePreprocessConfig(BaseModel):
    """How raw images become rows (see ``preprocessing.images`` for the exact policy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modality: Literal["image"] = "image"
    resize_to: int = Field(224, ge=1, description="shorter side after resizing, in pixels")
    crop_size: int = Field(224, ge=1, description="side of the square center crop, in pixels")
    rows_per_shard: int = Field(256, ge=1, description="target rows per Parquet shard")

    @model_validator(mode="after")
    def _crop_fits(self) -> ImagePreprocessConfig:
        if self.crop_size > self.resize_to:
            raise ValueError(
                f"crop_size={self.crop_size} must not exceed resize_to={self.resize_to}"
            )
        return self

    def config_hash(self) -> str:
        """Stable hash of everything that changes the rows (not of ``rows_per_shard``)."""
        return _rows_hash(self)


class AudioPreprocessConfig(BaseModel):
    """How raw audio becomes rows (see ``preprocessing.audio`` for the exact policy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modality: Literal["audio"] = "audio"
    sample_rate: int = Field(48_000, ge=1, description="output sample rate, in Hz")
    window_samples: int = Field(
        61_440, ge=1, description="samples per row at sample_rate (61,440 = 1.28 s at 48 kHz)"
    )
    crop: Literal["center", "start"] = Field(
        "center",
        description="which window of a longer clip a row keeps; a shorter clip is zero-padded "
        "at the end",
    )
    rows_per_shard: int = Field(256, ge=1, description="target rows per Parquet shard")

    def config_hash(self) -> str:
        """Stable hash of everything that changes the rows (not of ``rows_per_shard``)."""
        return _rows_hash(self)


class VideoPreprocessConfig(BaseModel):
    """How raw video clips become rows (see ``preprocessing.video`` for the exact policy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modality: Literal["video"] = "video"
    num_frames: int = Field(32, ge=1, description="frames per row (T)")
    frame_stride: int = Field(
        2, ge=1, description="distance between sampled frames, in frames of the clip's fps"
    )
    size: int = Field(
        224, ge=1, description="shorter side after resizing = side of the square center crop"
    )
    temporal_crop: Literal["center", "start"] = Field(
        "center", description="which span of a longer clip a row keeps"
    )
    rows_per_shard: int = Field(32, ge=1, description="target rows per Parquet shard")

    def config_hash(self) -> str:
        """Stable hash of everything that changes the rows (not of ``rows_per_shard``)."""
        return _rows_hash(self)


class KineticsPreprocessConfig(BaseModel):
    """How Kinetics clips become rows of frames + audio (see ``preprocessing.video``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modality: Literal["kinetics"] = "kinetics"
    num_frames: int = Field(16, ge=1, description="frames per row (T)")
    frame_stride: int = Field(
        1, ge=1, description="distance between sampled frames, in frames at target_fps"
    )
    target_fps: int = Field(25, ge=1, description="frame rate the frames are sampled at")
    size: int = Field(
        224, ge=1, description="shorter side after resizing = side of the square center crop"
    )
    sample_rate: int = Field(48_000, ge=1, description="audio output sample rate, in Hz")
    temporal_crop: Literal["center", "start"] = Field(
        "center", description="which span of a longer clip a row keeps"
    )
    rows_per_shard: int = Field(64, ge=1, description="target rows per Parquet shard")

    @model_validator(mode="after")
    def _whole_audio_samples(self) -> KineticsPreprocessConfig:
        span = self.num_frames * self.frame_stride * self.sample_rate
        if span % self.target_fps:
            raise ValueError(
                f"num_frames * frame_stride / target_fps = {self.num_frames} * "
                f"{self.frame_stride} / {self.target_fps} s is not a whole number of samples "
                f"at {self.sample_rate} Hz"
            )
        return self

    @property
    def audio_samples(self) -> int:
        """Audio samples per row: the span of the frames, ``T * stride / target_fps`` s."""
        return self.num_frames * self.frame_stride * self.sample_rate // self.target_fps

    def config_hash(self) -> str:
        """Stable hash of everything that changes the rows (not of ``rows_per_shard``)."""
        return _rows_hash(self)


class AutoflowPreprocessConfig(BaseModel):
    """How optical-flow samples become rows (see ``preprocessing.flow`` for the policy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modality: Literal["autoflow"] = "autoflow"
    layout: Literal["auto", "autoflow", "chairs", "sintel", "kitti"] = Field(
        "auto", description="input layout; 'auto' detects it (the manifest records the result)"
    )
    height: int = Field(368, ge=1, description="output height, in pixels")
    width: int = Field(496, ge=1, description="output width, in pixels")
    sintel_pass: Literal["clean", "final", "both"] = Field(
        "both", description="sintel: which render pass(es); both = splits val_clean, val_final"
    )
    split: Literal["train", "val"] | None = Field(
        None, description="put every sample in this split (default: the layout's own)"
    )
    rows_per_shard: int = Field(32, ge=1, description="target rows per Parquet shard")

    def config_hash(self) -> str:
        """Stable hash of everything that changes the rows (not of ``rows_per_shard``)."""
        return _rows_hash(self)


def _rows_hash(config: BaseModel) -> str:
    payload = config.model_dump(exclude={"rows_per_shard"})
    payload["format_version"] = FORMAT_VERSION
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
