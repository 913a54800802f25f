"""Basic decoder: one output query per output position cross-attends to the latents.

This is Perceiver IO's generic decoder (dense outputs such as optical flow, per-pixel or
per-token predictions). The output positions form an index grid ``output_index_shape``
(e.g. ``(H, W)`` for per-pixel outputs, ``(N,)`` for a sequence); each position gets a query:

- ``query_type="fourier"``: Fourier features of the position's normalised grid coordinates
  (see ``perceiver.position``), optionally concatenated with a trainable linear projection of
  those features (``num_query_projection_channels``), which gives the query learned channels
  while keeping the fixed position signal;
- ``query_type="trainable"``: a learned (N_out, C_q) table.

All queries cross-attend to the latents independently, so ``chunk_size`` processes them in
chunks and keeps memory bounded for hundreds of thousands of output positions.

The output head defaults to a linear map of the query width to ``num_output_channels``; an
injected ``head`` (any (B, N, C_q) -> (B, N, num_output_channels) module, e.g. a
``TiedEmbeddingHead`` for masked language modelling) replaces it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from perceiver.attention import CrossAttentionLayer
from perceiver.position import FourierPositionEncoding, TrainablePositionEncoding

QueryType = Literal["fourier", "trainable"]


class BasicDecoder(nn.Module):
    """Latents (B, L, C_latent) -> outputs (B, N_out, num_output_channels).

    ``N_out = prod(output_index_shape)``, positions in row-major order of the grid.
    ``query_residual`` defaults to False: the query is a position code, not a value the
    output should carry on.
    """

    def __init__(
        self,
        num_output_channels: int,
        num_latent_channels: int,
        output_index_shape: Sequence[int],
        query_type: QueryType = "fourier",
        num_frequency_bands: int = 32,
        max_resolution: Sequence[int] | None = None,
        num_query_projection_channels: int | None = None,
        num_output_query_channels: int | None = None,
        num_cross_attention_heads: int = 1,
        num_cross_attention_qk_channels: int | None = None,
        num_cross_attention_v_channels: int | None = None,
        cross_attention_widening_factor: int = 1,
        query_residual: bool = False,
        dropout: float = 0.0,
        chunk_size: int | None = None,
        head: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if num_output_channels < 1:
            raise ValueError(f"num_output_channels must be >= 1, got {num_output_channels}")
        index_shape = tuple(output_index_shape)
        if not index_shape or min(index_shape) < 1:
            raise ValueError(
                f"output_index_shape must be non-empty and positive, got {index_shape}"
            )
        self.output_index_shape = index_shape
        self.num_outputs = math.prod(index_shape)

        self.output_query: FourierPositionEncoding | TrainablePositionEncoding
        self.query_projection: nn.Linear | None = None
        if query_type == "fourier":
            if num_output_query_channels is not None:
                raise ValueError(
                    f"num_output_query_channels={num_output_query_channels} only applies to "
                    "query_type='trainable'; Fourier queries have a fixed width"
                )
            self.output_query = FourierPositionEncoding(
                index_shape, num_frequency_bands, max_resolution
            )
            num_query_channels = self.output_query.num_channels
            if num_query_projection_channels is not None:
                if num_query_projection_channels < 1:
                    raise ValueError(
                        "num_query_projection_channels must be >= 1, "
                        f"got {num_query_projection_channels}"
                    )
                self.query_projection = nn.Linear(num_query_channels, num_query_projection_channels)
                num_query_channels += num_query_projection_channels
        elif query_type == "trainable":
            if num_query_projection_channels is not None:
                raise ValueError(
                    f"num_query_projection_channels={num_query_projection_channels} only "
                    "applies to query_type='fourier'"
                )
            num_query_channels = num_output_query_channels or num_latent_channels
            self.output_query = TrainablePositionEncoding(self.num_outputs, num_query_channels)
        else:
            raise ValueError(f"query_type must be 'fourier' or 'trainable', got {query_type!r}")
        self.query_type = query_type
        self.num_query_channels = num_query_channels

        self.cross_attention = CrossAttentionLayer(
            num_heads=num_cross_attention_heads,
            num_q_input_channels=num_query_channels,
            num_kv_input_channels=num_latent_channels,
            num_qk_channels=num_cross_attention_qk_channels,
            num_v_channels=num_cross_attention_v_channels,
            widening_factor=cross_attention_widening_factor,
            dropout=dropout,
            query_residual=query_residual,
            chunk_size=chunk_size,
        )
        self.head = head if head is not None else nn.Linear(num_query_channels, num_output_channels)

    @property
    def chunk_size(self) -> int | None:
        """Queries per cross-attention chunk (None: all at once); settable after construction."""
        return self.cross_attention.chunk_size

    @chunk_size.setter
    def chunk_size(self, value: int | None) -> None:
        self.cross_attention.chunk_size = value

    def output_queries(self, batch_size: int) -> torch.Tensor:
        """The queries of all output positions: (B, N_out, C_q)."""
        query = self.output_query(1)  # (1, N_out, P)
        if self.query_projection is not None:
            projected = self.query_projection(query)  # (1, N_out, C_proj)
            query = torch.cat([query, projected], dim=-1)  # (1, N_out, P + C_proj)
        return query.expand(batch_size, -1, -1)  # (B, N_out, C_q), a view

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """latents: (B, L, C_latent) -> (B, N_out, num_output_channels)."""
        query = self.output_queries(latents.shape[0]).to(latents.dtype)  # (B, N_out, C_q)
        out = self.cross_attention(query, latents)  # (B, N_out, C_q)
        return self.head(out)  # (B, N_out, C_out)
