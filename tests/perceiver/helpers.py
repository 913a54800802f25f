"""Small shared pieces of the perceiver tests."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from perceiver import builders
from perceiver.config import ClassificationDecoderConfig, CrossAttentionConfig, EncoderConfig
from perceiver.modules.attention import CrossAttentionLayer
from perceiver.modules.encoder import PerceiverEncoder
from perceiver.modules.encoder_iterative import IterativePerceiverEncoder
from perceiver.modules.inputs import InputAdapter
from perceiver.modules.perceiver_io import PerceiverIO


class IdentityAdapter(InputAdapter):
    """Passes a ready (B, M, C) array through, so encoder tests need no modality."""

    def __init__(self, num_input_channels: int) -> None:
        super().__init__()
        self.num_input_channels = num_input_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def num_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def grads(module: nn.Module) -> dict[str, torch.Tensor]:
    """Name -> gradient of every parameter (all must have one)."""
    out = {}
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} has no gradient"
        out[name] = p.grad.clone()
    return out


def encoder_around(adapter: InputAdapter, **encoder: Any) -> PerceiverEncoder:
    """The encoder an ``EncoderConfig(**encoder)`` describes, around ``adapter``."""
    return builders.encoder(EncoderConfig(**encoder), adapter)


def classifier_around(adapter: InputAdapter, num_classes: int, **encoder: Any) -> PerceiverIO:
    """Encoder (``EncoderConfig(**encoder)``) + classification decoder around ``adapter``."""
    config = EncoderConfig(**encoder)
    decoder = builders.classification_decoder(
        ClassificationDecoderConfig(), num_classes, config.num_latent_channels
    )
    return PerceiverIO(builders.encoder(config, adapter), decoder)


def cross_attention(
    num_heads: int,
    num_q_input_channels: int,
    num_kv_input_channels: int,
    num_qk_channels: int | None = None,
    num_v_channels: int | None = None,
    widening_factor: int = 1,
    dropout: float = 0.0,
    query_residual: bool = True,
    chunk_size: int | None = None,
    kv_chunk_size: int | None = None,
) -> CrossAttentionLayer:
    """A ``CrossAttentionLayer`` of these sizes, built as the builders build every one."""
    spec = CrossAttentionConfig(
        num_cross_attention_heads=num_heads,
        num_cross_attention_qk_channels=num_qk_channels,
        num_cross_attention_v_channels=num_v_channels,
        cross_attention_widening_factor=widening_factor,
        dropout=dropout,
        query_residual=query_residual,
    )
    return builders.cross_attention_layer(
        spec, num_q_input_channels, num_kv_input_channels, chunk_size, kv_chunk_size
    )


def iterative_encoder(
    adapter: InputAdapter,
    num_cross_attends: int = 1,
    num_self_attention_blocks_per_cross_attend: int = 1,
    **encoder: Any,
) -> IterativePerceiverEncoder:
    """The original Perceiver's encoder, its layers built from ``EncoderConfig(**encoder)``."""
    config = EncoderConfig(**encoder)

    def cross() -> CrossAttentionLayer:
        return builders.cross_attention_layer(
            config,
            config.num_latent_channels,
            adapter.num_input_channels,
            kv_chunk_size=config.kv_chunk_size,
        )

    return IterativePerceiverEncoder(
        adapter,
        cross(),
        builders.self_attention_block(config),
        num_latents=config.num_latents,
        shared_cross_attention=cross() if num_cross_attends > 1 else None,
        num_cross_attends=num_cross_attends,
        num_self_attention_blocks_per_cross_attend=num_self_attention_blocks_per_cross_attend,
        activation_checkpointing=config.activation_checkpointing,
    )
