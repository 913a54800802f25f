"""Config of the optical-flow model (Perceiver IO on AutoFlow, evaluated on Sintel and KITTI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from perceiver.config.base import StrictModel
from perceiver.config.blocks import EncoderConfig, FlowDecoderConfig


class OpticalFlowConfig(StrictModel):
    """Perceiver IO optical flow: (B, 2, H, W, 3) frame pairs -> (B, H, W, 2) flow in pixels.

    The model takes what ``preprocess --modality autoflow`` writes: uint8 frames. As in
    DeepMind's model it scales them to [-1, 1], takes the ``patch_size`` x ``patch_size``
    neighbourhood of every pixel in every frame (2 x 27 values for 3x3 RGB patches), projects
    them to ``num_preprocessing_channels`` and concatenates 2D Fourier features of the pixel
    (``perceiver.adapters.flow``); the decoder's queries are those same per-pixel inputs.
    """

    task: Literal["optical_flow"] = "optical_flow"
    image_size: tuple[int, int] = Field((368, 496), description="(height, width) of the frames")
    num_frames: int = Field(2, ge=1, description="frames per sample")
    num_image_channels: int = Field(3, ge=1)
    patch_size: int = Field(3, ge=1, description="side of each pixel's neighbourhood (odd)")
    num_preprocessing_channels: int = Field(64, ge=1, description="projection width")
    num_frequency_bands: int = Field(64, ge=1, description="Fourier bands per axis")
    max_resolution: tuple[int, int] | None = Field(
        None, description="highest Fourier band at max_resolution / 2 (default: (H, W))"
    )
    encoder: EncoderConfig = EncoderConfig()
    decoder: FlowDecoderConfig = FlowDecoderConfig()

    @model_validator(mode="before")
    @classmethod
    def _from_frames_shape(cls, data: Any) -> Any:
        """Configs written before 0.2 described the model's old input, 3x3 patches, as
        ``frames_shape: (T, 9 * C, H, W)``; they describe the same weights."""
        if not isinstance(data, dict) or "frames_shape" not in data:
            return data
        data = dict(data)
        frames, channels, height, width = data.pop("frames_shape")
        if channels % 9:
            raise ValueError(
                f"frames_shape={[frames, channels, height, width]}: {channels} channels are not "
                "3x3 patches (a multiple of 9)"
            )
        data.update(
            num_frames=frames,
            num_image_channels=channels // 9,
            patch_size=3,
            image_size=(height, width),
        )
        return data

    @model_validator(mode="after")
    def _shape_fits(self) -> OpticalFlowConfig:
        if min(self.image_size) < 1:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if self.patch_size % 2 == 0:
            raise ValueError(f"patch_size must be odd, got {self.patch_size}")
        return self

    @property
    def frames_shape(self) -> tuple[int, int, int, int]:
        """(T, H, W, C) of one sample's frames, as the shards hold them."""
        return self.num_frames, *self.image_size, self.num_image_channels
