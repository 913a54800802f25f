"""Decoder heads: what each attended query (B, N, C_q) becomes.

- ``nn.Linear``: (B, N, C_out) features (the multimodal decoder, before its postprocessors);
- ``ClassificationHead``: the single query's (B, num_classes) logits;
- ``GridHead``: (B, *grid, C_out) values laid out on the output grid, scaled (optical flow);
- ``TiedEmbeddingHead``: (B, N, V) token logits through the input token embedding (masked
  language modelling).

``ClassificationHead`` and ``GridHead`` are ``nn.Linear`` themselves, so their weights are
``head.weight`` and ``head.bias`` as in a plain linear head.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ClassificationHead(nn.Linear):
    """(B, 1, C_q) -> (B, num_classes) logits of the one classification query."""

    def __init__(self, num_query_channels: int, num_classes: int) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        super().__init__(num_query_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"expected one query per sample (B, 1, C), got {tuple(x.shape)}")
        return super().forward(x[:, 0])  # (B, K)


class GridHead(nn.Linear):
    """(B, N, C_q) -> (B, *grid_shape, num_output_channels), times ``scale``.

    ``N`` must equal ``prod(grid_shape)``; outputs are in the grid's row-major order.
    """

    def __init__(
        self,
        num_query_channels: int,
        num_output_channels: int,
        grid_shape: Sequence[int],
        scale: float = 1.0,
    ) -> None:
        grid = tuple(grid_shape)
        if not grid or min(grid) < 1:
            raise ValueError(f"grid_shape must be non-empty and positive, got {grid}")
        if not math.isfinite(scale) or scale == 0:
            raise ValueError(f"scale must be finite and non-zero, got {scale}")
        super().__init__(num_query_channels, num_output_channels)
        self.grid_shape = grid
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != math.prod(self.grid_shape):
            raise ValueError(
                f"expected {math.prod(self.grid_shape)} queries for the grid {self.grid_shape}, "
                f"got shape {tuple(x.shape)}"
            )
        out = super().forward(x) * self.scale  # (B, N, C_out)
        return out.reshape(out.shape[0], *self.grid_shape, out.shape[-1])  # (B, *grid, C_out)


class TiedEmbeddingHead(nn.Module):
    """(B, N, C) -> (B, N, V) logits ``x @ embedding.weight.T + bias``.

    Masked language models (BERT, Perceiver IO's byte-level MLM) compare the decoder output
    with every row of the input token embedding. ``embedding`` is shared, not copied: it stays
    a submodule of its input adapter too, so its weight appears under both names in the state
    dict and gets the gradient of both uses.
    """

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.embedding.embedding_dim:
            raise ValueError(
                f"expected {self.embedding.embedding_dim} channels, got shape {tuple(x.shape)}"
            )
        return F.linear(x, self.embedding.weight, self.bias)  # (B, N, V)
