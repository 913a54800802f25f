"""Configs of the blocks every task shares: the encoder and the decoders' cross-attention.

Every cross-attention (the encoder's over the inputs, each decoder's over the latents) is
described by the same fields, ``CrossAttentionConfig``; ``perceiver.builders`` turns them into
a ``CrossAttentionLayer`` in one place. Invalid sizes fail here, at load, not in forward.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from perceiver.config.base import StrictModel


class CrossAttentionConfig(StrictModel):
    """Widths, heads and dropout of one cross-attention layer (queries attend to keys/values).

    The query/key width defaults to the query width, the value width to the query/key width
    (the Perceiver IO paper's defaults); both must be divisible by the number of heads.
    """

    num_cross_attention_heads: int = Field(1, ge=1)
    num_cross_attention_qk_channels: int | None = Field(
        None, ge=1, description="query/key width (default: the query width)"
    )
    num_cross_attention_v_channels: int | None = Field(
        None, ge=1, description="value width (default: the query/key width)"
    )
    cross_attention_widening_factor: int = Field(1, ge=1, description="MLP hidden / width")
    query_residual: bool = Field(
        True, description="residual around the attention (Hugging Face's use_query_residual)"
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout after the MLP")
    attention_dropout: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="dropout on attention probabilities (default: dropout); Hugging Face "
        "conversions set dropout=0 and this to attention_probs_dropout_prob",
    )

    @property
    def attention_dropout_rate(self) -> float:
        return self.dropout if self.attention_dropout is None else self.attention_dropout

    def check_heads(self, num_query_channels: int, what: str) -> None:
        """ValueError unless the heads divide the widths this layer gets for its queries."""
        _check_heads(
            f"{what} cross-attention",
            self.num_cross_attention_qk_channels or num_query_channels,
            self.num_cross_attention_v_channels,
            "num_cross_attention_heads",
            self.num_cross_attention_heads,
        )


def _check_heads(what: str, qk: int, v: int | None, heads_name: str, heads: int) -> None:
    """ValueError unless ``heads`` divides the query/key and value widths (v defaults to qk)."""
    for name, width in (("qk", qk), ("v", v or qk)):
        if width % heads:
            raise ValueError(
                f"{what} {name} channels={width} must be divisible by {heads_name}={heads}"
            )


class EncoderConfig(CrossAttentionConfig):
    """Latent array and its attention stack (see ``perceiver.modules.encoder``)."""

    num_latents: int = Field(32, ge=1, description="number of latent positions L")
    num_latent_channels: int = Field(64, ge=1, description="latent width C")
    num_self_attention_heads: int = Field(4, ge=1)
    num_self_attention_layers_per_block: int = Field(2, ge=1)
    num_self_attention_blocks: int = Field(
        1, ge=1, description="times the weight-shared latent block is applied"
    )
    self_attention_widening_factor: int = Field(1, ge=1)
    num_self_attention_qk_channels: int | None = Field(
        None, ge=1, description="query/key width of the latent self-attention (default: C)"
    )
    num_self_attention_v_channels: int | None = Field(
        None, ge=1, description="value width of the latent self-attention (default: qk)"
    )
    activation_checkpointing: bool = Field(
        False,
        description="recompute the cross-attention and latent layers in backward to save memory",
    )
    kv_chunk_size: int | None = Field(
        None,
        ge=1,
        description="input positions the input cross-attention normalises, projects and "
        "attends to at a time, merged exactly by log-sum-exp, so memory stays bounded for "
        "very many inputs (None: all at once)",
    )

    @model_validator(mode="after")
    def _heads_divide_channels(self) -> EncoderConfig:
        self_qk = self.num_self_attention_qk_channels
        if self_qk is None and self.num_latent_channels % self.num_self_attention_heads:
            raise ValueError(
                f"num_latent_channels={self.num_latent_channels} must be divisible by "
                f"num_self_attention_heads={self.num_self_attention_heads}"
            )
        self.check_heads(self.num_latent_channels, "encoder")
        _check_heads(
            "self-attention",
            self_qk or self.num_latent_channels,
            self.num_self_attention_v_channels,
            "num_self_attention_heads",
            self.num_self_attention_heads,
        )
        return self


class ClassificationDecoderConfig(CrossAttentionConfig):
    """One trainable query cross-attends to the latents; a linear head gives the logits."""

    num_output_query_channels: int | None = Field(
        None, ge=1, description="query width (default: the latent width)"
    )


class MaskedLMDecoderConfig(CrossAttentionConfig):
    """One trainable query per output position; logits through the tied token embedding."""

    num_output_positions: int | None = Field(
        None, ge=1, description="output positions (default: max_seq_len)"
    )
    num_output_query_channels: int | None = Field(
        None, ge=1, description="query width (default and only value: the embedding width)"
    )
    query_residual: bool = False


class FlowDecoderConfig(CrossAttentionConfig):
    """The adapted inputs are the queries: one output per input pixel (optical flow)."""

    num_output_channels: int = Field(2, ge=1, description="2 for (u, v) flow")
    query_residual: bool = False
    rescale_factor: float = Field(100.0, description="the head's outputs are divided by this")
    flow_scale_factor: float = Field(
        20.0,
        description="then multiplied by this, giving pixels: DeepMind trained on flow / 20 "
        "(deepmind-research issue 266); Hugging Face's model returns the flow / 20",
    )

    @model_validator(mode="after")
    def _nonzero_rescale(self) -> FlowDecoderConfig:
        if self.rescale_factor == 0:
            raise ValueError("rescale_factor must be non-zero")
        return self


class MultimodalDecoderConfig(CrossAttentionConfig):
    """Per-modality queries padded to a common width, one shared cross-attention."""

    num_output_channels: int = Field(512, ge=1, description="features per decoded output")
    min_padding_size: int = Field(2, ge=0, description="query padding beyond the widest")
    image_num_frequency_bands: int = Field(32, ge=1, description="Fourier bands of pixel queries")
    audio_num_frequency_bands: int = Field(192, ge=1, description="bands of audio-patch queries")
    num_label_query_channels: int = Field(1024, ge=1, description="trainable label query width")
    query_residual: bool = False
    chunk_size: int | None = Field(
        None, ge=1, description="queries per cross-attention call (None: all at once)"
    )
