"""Config of the image classifier (Perceiver IO on ImageNet and its preprocessing variants)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from perceiver.config.base import StrictModel
from perceiver.config.blocks import ClassificationDecoderConfig, EncoderConfig

ImagePreprocessing = Literal["pixels", "conv1x1", "patches", "conv"]
PositionEncodingType = Literal["fourier", "trainable"]


class ImageClassifierConfig(StrictModel):
    """Perceiver IO image classifier: preprocessed image + 2D Fourier features -> class logits.

    ``preprocessing`` picks the input adapter (``perceiver.adapters``): ``pixels`` (every
    pixel is an input position), ``conv1x1`` (learned 1x1 conv per pixel), ``patches``
    (space-to-depth of ``patch_size`` patches) or ``conv`` (conv 7x7/2 + max-pool 3x3/2).
    """

    task: Literal["image_classification"] = "image_classification"
    image_shape: tuple[int, int, int] = Field(
        (224, 224, 3), description="(height, width, channels) of the input arrays"
    )
    num_classes: int = Field(..., ge=2)
    num_frequency_bands: int = Field(32, ge=1, description="Fourier bands per image axis")
    preprocessing: ImagePreprocessing = Field(
        "pixels", description="input adapter: pixels, conv1x1, patches or conv"
    )
    patch_size: int = Field(4, ge=1, description="patch side for preprocessing=patches")
    num_preprocessing_channels: int | None = Field(
        None,
        ge=1,
        description="channels after conv1x1 (default 256) or conv (default 64), or the "
        "projection width of patches (default: none, p*p*C raw channels)",
    )
    encoder: EncoderConfig = EncoderConfig()
    decoder: ClassificationDecoderConfig = ClassificationDecoderConfig()
    # Options that Hugging Face conversions use (perceiver.convert); defaults are ours.
    normalize: bool = Field(
        True,
        description="normalise with the ImageNet mean/std; False takes float images as they are",
    )
    channels_first: bool = Field(False, description="take (B, C, H, W) instead of (B, H, W, C)")
    max_resolution: tuple[int, int] | None = Field(
        None, description="Fourier: highest band at max_resolution / 2 (default: the grid)"
    )
    position_encoding: PositionEncodingType = Field(
        "fourier", description="fourier features or a trainable table per grid position"
    )
    num_position_channels: int | None = Field(
        None, ge=1, description="width of the trainable position table"
    )
    num_position_projection_channels: int | None = Field(
        None, ge=1, description="trainable positions: linear projection to this width"
    )
    use_batchnorm: bool = Field(True, description="conv: BatchNorm after the conv (else a bias)")
    pool_padding: Literal[0, 1] = Field(1, description="conv: max-pool padding (HF: 0)")

    @model_validator(mode="after")
    def _positive_shape(self) -> ImageClassifierConfig:
        if min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be positive, got {self.image_shape}")
        return self

    @model_validator(mode="after")
    def _position_options_fit(self) -> ImageClassifierConfig:
        trainable = self.position_encoding == "trainable"
        if trainable and self.num_position_channels is None:
            raise ValueError("position_encoding='trainable' needs num_position_channels")
        if trainable and self.max_resolution is not None:
            raise ValueError("max_resolution applies to position_encoding='fourier' only")
        if not trainable and (
            self.num_position_channels is not None
            or self.num_position_projection_channels is not None
        ):
            raise ValueError(
                "num_position_channels and num_position_projection_channels apply to "
                "position_encoding='trainable' only"
            )
        return self

    @model_validator(mode="after")
    def _preprocessing_fits(self) -> ImageClassifierConfig:
        height, width, _ = self.image_shape
        if self.preprocessing == "patches" and (
            height % self.patch_size or width % self.patch_size
        ):
            raise ValueError(
                f"patch_size={self.patch_size} must divide the image height {height} and "
                f"width {width}"
            )
        if self.preprocessing == "pixels" and self.num_preprocessing_channels is not None:
            raise ValueError(
                f"num_preprocessing_channels={self.num_preprocessing_channels} does not apply "
                "to preprocessing='pixels'"
            )
        return self
