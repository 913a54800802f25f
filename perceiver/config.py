"""Pydantic configs of the model library. Invalid sizes fail here, at load, not in forward."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    """Base of every config: unknown keys are errors, values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EncoderConfig(StrictModel):
    """Latent array and its attention stack (see ``perceiver.encoder.PerceiverEncoder``)."""

    num_latents: int = Field(32, ge=1, description="number of latent positions L")
    num_latent_channels: int = Field(64, ge=1, description="latent width C")
    num_cross_attention_heads: int = Field(1, ge=1)
    num_cross_attention_qk_channels: int | None = Field(
        None, ge=1, description="query/key width of the input cross-attention (default: C)"
    )
    num_cross_attention_v_channels: int | None = Field(
        None, ge=1, description="value width of the input cross-attention (default: qk)"
    )
    num_self_attention_heads: int = Field(4, ge=1)
    num_self_attention_layers_per_block: int = Field(2, ge=1)
    num_self_attention_blocks: int = Field(
        1, ge=1, description="times the weight-shared latent block is applied"
    )
    cross_attention_widening_factor: int = Field(1, ge=1)
    self_attention_widening_factor: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    activation_checkpointing: bool = Field(
        False,
        description="recompute the cross-attention and latent layers in backward to save memory",
    )

    @model_validator(mode="after")
    def _heads_divide_channels(self) -> EncoderConfig:
        if self.num_latent_channels % self.num_self_attention_heads != 0:
            raise ValueError(
                f"num_latent_channels={self.num_latent_channels} must be divisible by "
                f"num_self_attention_heads={self.num_self_attention_heads}"
            )
        qk = self.num_cross_attention_qk_channels or self.num_latent_channels
        v = self.num_cross_attention_v_channels or qk
        for name, width in (("qk", qk), ("v", v)):
            if width % self.num_cross_attention_heads != 0:
                raise ValueError(
                    f"cross-attention {name} channels={width} must be divisible by "
                    f"num_cross_attention_heads={self.num_cross_attention_heads}"
                )
        return self


class ClassificationDecoderConfig(StrictModel):
    """One trainable query that cross-attends to the latents."""

    num_output_query_channels: int | None = Field(
        None, ge=1, description="query width (default: the latent width)"
    )
    num_cross_attention_heads: int = Field(1, ge=1)
    cross_attention_widening_factor: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


ImagePreprocessing = Literal["pixels", "conv1x1", "patches", "conv"]


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

    @model_validator(mode="after")
    def _positive_shape(self) -> ImageClassifierConfig:
        if min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be positive, got {self.image_shape}")
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
