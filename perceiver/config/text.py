"""Configs of the byte-level text models: masked language model and sequence classifier."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from perceiver.config.base import StrictModel
from perceiver.config.blocks import (
    ClassificationDecoderConfig,
    EncoderConfig,
    MaskedLMDecoderConfig,
)


class TextModelConfig(StrictModel):
    """Token ids + trainable positions (``TextInputAdapter``) into a Perceiver encoder."""

    vocab_size: int = Field(262, ge=1, description="token ids (UTF-8 bytes + specials: 262)")
    max_seq_len: int = Field(2048, ge=1, description="longest input sequence")
    num_input_channels: int = Field(768, ge=1, description="embedding width (HF d_model)")
    encoder: EncoderConfig = EncoderConfig()


class MaskedLMConfig(TextModelConfig):
    """Perceiver IO masked language model: (B, N) ids -> (B, N_out, vocab_size) logits."""

    task: Literal["masked_language_modeling"] = "masked_language_modeling"
    decoder: MaskedLMDecoderConfig = MaskedLMDecoderConfig()

    @model_validator(mode="after")
    def _query_fits_the_tied_head(self) -> MaskedLMConfig:
        width = self.decoder.num_output_query_channels
        if width is not None and width != self.num_input_channels:
            raise ValueError(
                f"decoder.num_output_query_channels={width} must equal num_input_channels="
                f"{self.num_input_channels}: the logits are dot products with the embedding"
            )
        return self


class SequenceClassifierConfig(TextModelConfig):
    """Perceiver IO text classifier: (B, N) ids -> (B, num_classes) logits."""

    task: Literal["sequence_classification"] = "sequence_classification"
    num_classes: int = Field(..., ge=2)
    decoder: ClassificationDecoderConfig = ClassificationDecoderConfig()
