"""Pydantic configs of the preprocessing runs, one per modality; a config's hash goes into the
manifest, and a run may only extend an output written with the same hash.

Every config derives from the project's strict base (``perceiver.config.base.StrictModel``:
unknown keys are errors, values are frozen); a bad value raises at load with the field named.
"""

from __future__ import annotations

import hashlib
import json
from typing import ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from perceiver.config.base import StrictModel

FORMAT_VERSION = 1


class ImagePreprocessConfig(StrictModel):
    """How raw images become rows (see ``preprocessing.decode.image`` for the exact policy)."""

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


class AudioPreprocessConfig(StrictModel):
    """How raw audio becomes rows (see ``preprocessing.decode.audio`` for the exact policy)."""

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


class VideoPreprocessConfig(StrictModel):
    """How raw video clips become rows (see ``preprocessing.decode.video`` for the exact policy)."""

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
    val_fraction: float = Field(
        0.2,
        ge=0.0,
        lt=1.0,
        description="plain class folders without split lists: share of the clips put in val, "
        "by a stable hash of each clip's path (preprocessing.layouts.class_folders)",
    )
    split_number: int = Field(
        1,
        ge=1,
        description="plain class folders with official split lists (UCF-101 trainlist0N.txt/"
        "testlist0N.txt, HMDB-51 <class>_test_splitN.txt): which split N to follow",
    )
    rows_per_shard: int = Field(32, ge=1, description="target rows per Parquet shard")

    # Added after outputs were written: hashed only when set away from their defaults, so an
    # output written before they existed keeps its hash (and stays extendable).
    hashed_when_changed: ClassVar[tuple[str, ...]] = ("val_fraction", "split_number")

    def config_hash(self) -> str:
        """Stable hash of everything that changes the rows (not of ``rows_per_shard``)."""
        return _rows_hash(self, self.hashed_when_changed)


class KineticsPreprocessConfig(StrictModel):
    """How Kinetics clips become rows of frames + audio (see ``preprocessing.decode.video``)."""

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


class AutoflowPreprocessConfig(StrictModel):
    """How optical-flow samples become rows (see ``preprocessing.decode.flow`` for the policy)."""

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


def _rows_hash(config: BaseModel, hashed_when_changed: tuple[str, ...] = ()) -> str:
    defaults = {k: type(config).model_fields[k].default for k in hashed_when_changed}
    payload = config.model_dump(exclude={"rows_per_shard"})
    for name, default in defaults.items():
        if payload[name] == default:
            del payload[name]
    payload["format_version"] = FORMAT_VERSION
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
