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


class ImageClassifierConfig(StrictModel):
    """Perceiver IO image classifier: pixels + 2D Fourier features -> class logits."""

    task: Literal["image_classification"] = "image_classification"
    image_shape: tuple[int, int, int] = Field(
        (224, 224, 3), description="(height, width, channels) of the input arrays"
    )
    num_classes: int = Field(..., ge=2)
    num_frequency_bands: int = Field(32, ge=1, description="Fourier bands per image axis")
    encoder: EncoderConfig = EncoderConfig()
    decoder: ClassificationDecoderConfig = ClassificationDecoderConfig()

    @model_validator(mode="after")
    def _positive_shape(self) -> ImageClassifierConfig:
        if min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be positive, got {self.image_shape}")
        return self
