"""Decoder whose queries are given at call time, e.g. the encoder's own adapted inputs.

Perceiver IO's optical-flow model decodes one flow vector per input pixel by using each
pixel's input features (its frame features and position code) as that pixel's query. The
decoder is otherwise a ``BasicDecoder``: one cross-attention layer, then a linear head; the
outputs are divided by ``rescale_factor`` and laid out on ``output_index_shape``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from perceiver.attention import CrossAttentionLayer


class InputQueryDecoder(nn.Module):
    """latents (B, L, C_latent), queries (B, N, C_q) -> (B, *output_index_shape, C_out).

    ``N`` must equal ``prod(output_index_shape)``.
    """

    def __init__(
        self,
        num_output_channels: int,
        num_latent_channels: int,
        num_query_channels: int,
        output_index_shape: Sequence[int],
        num_cross_attention_heads: int = 1,
        num_cross_attention_qk_channels: int | None = None,
        num_cross_attention_v_channels: int | None = None,
        cross_attention_widening_factor: int = 1,
        query_residual: bool = False,
        rescale_factor: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        index_shape = tuple(output_index_shape)
        if not index_shape or min(index_shape) < 1:
            raise ValueError(
                f"output_index_shape must be non-empty and positive, got {index_shape}"
            )
        if rescale_factor == 0:
            raise ValueError(f"rescale_factor must be non-zero, got {rescale_factor}")
        self.output_index_shape = index_shape
        self.num_outputs = math.prod(index_shape)
        self.rescale_factor = rescale_factor
        self.cross_attention = CrossAttentionLayer(
            num_heads=num_cross_attention_heads,
            num_q_input_channels=num_query_channels,
            num_kv_input_channels=num_latent_channels,
            num_qk_channels=num_cross_attention_qk_channels,
            num_v_channels=num_cross_attention_v_channels,
            widening_factor=cross_attention_widening_factor,
            dropout=dropout,
            query_residual=query_residual,
        )
        self.head = nn.Linear(num_query_channels, num_output_channels)

    def forward(self, latents: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        if queries.shape[1] != self.num_outputs:
            raise ValueError(
                f"expected {self.num_outputs} queries for output_index_shape "
                f"{self.output_index_shape}, got shape {tuple(queries.shape)}"
            )
        out = self.head(self.cross_attention(queries, latents))  # (B, N, C_out)
        out = out / self.rescale_factor
        return out.reshape(out.shape[0], *self.output_index_shape, out.shape[-1])
