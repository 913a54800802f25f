"""Position encodings: Fourier features over an index grid, and trainable encodings.

The Fourier encoding follows the Perceiver papers: positions normalised to [-1, 1] along
each axis, ``num_bands`` frequencies spaced linearly from 1 to ``max_resolution / 2`` (the
Nyquist frequency of that axis), features ``sin(pi * f * x)`` and ``cos(pi * f * x)``, and the
raw position concatenated in front when ``concat_pos``. For a 224x224 image with 64 bands that
is 2 + 2 * 2 * 64 = 258 channels.

Every encoding is a ``PositionEncoding``: ``forward(batch_size)`` returns its
(B, num_positions, num_channels) table, so adapters and decoders take any of them by injection.
``ProjectedPositionEncoding`` wraps one with a trainable linear projection (as Hugging Face's
``PerceiverForImageClassificationLearned`` does with its trainable table).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def position_grid(index_shape: Sequence[int]) -> torch.Tensor:
    """Positions of an index grid normalised to [-1, 1]: (prod(index_shape), len(index_shape))."""
    axes = [torch.linspace(-1.0, 1.0, steps=n) for n in index_shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (*index_shape, D)
    return grid.reshape(-1, len(index_shape))  # (N, D)


def fourier_features(
    positions: torch.Tensor,
    num_bands: int,
    max_resolution: Sequence[int],
    concat_pos: bool = True,
    sine_only: bool = False,
) -> torch.Tensor:
    """positions: (N, D) in [-1, 1] -> (N, D * (1 if concat_pos) + D * num_bands * (1 or 2))."""
    num_dims = positions.shape[-1]
    if len(max_resolution) != num_dims:
        raise ValueError(
            f"max_resolution={tuple(max_resolution)} has {len(max_resolution)} entries, "
            f"positions have {num_dims} dimensions"
        )
    freqs = torch.stack(
        [
            torch.linspace(
                1.0, res / 2.0, steps=num_bands, device=positions.device, dtype=positions.dtype
            )
            for res in max_resolution
        ]
    )  # (D, F)
    scaled = positions[:, :, None] * freqs[None, :, :]  # (N, D, F)
    scaled = scaled.reshape(positions.shape[0], -1)  # (N, D * F)
    parts = [positions] if concat_pos else []
    parts.append(torch.sin(math.pi * scaled))
    if not sine_only:
        parts.append(torch.cos(math.pi * scaled))
    return torch.cat(parts, dim=-1)


def num_fourier_channels(
    num_dims: int, num_bands: int, concat_pos: bool = True, sine_only: bool = False
) -> int:
    """Channel count of ``fourier_features`` for ``num_dims`` axes."""
    return (num_dims if concat_pos else 0) + num_dims * num_bands * (1 if sine_only else 2)


class PositionEncoding(nn.Module):
    """A (num_positions, num_channels) position table, repeated over the batch: -> (B, N, C)."""

    num_positions: int
    num_channels: int

    def forward(self, batch_size: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class FourierPositionEncoding(PositionEncoding):
    """Fixed Fourier features of an index grid, repeated over the batch: -> (B, N, C).

    The table is a non-persistent buffer: it is recomputed at construction, not stored in
    checkpoints, and follows the module across devices and dtypes.
    """

    table: torch.Tensor

    def __init__(
        self,
        index_shape: Sequence[int],
        num_bands: int,
        max_resolution: Sequence[int] | None = None,
        concat_pos: bool = True,
        sine_only: bool = False,
    ) -> None:
        super().__init__()
        if num_bands < 1:
            raise ValueError(f"num_bands must be >= 1, got {num_bands}")
        self.index_shape = tuple(index_shape)
        self.num_positions = math.prod(self.index_shape)
        self.num_channels = num_fourier_channels(
            len(self.index_shape), num_bands, concat_pos, sine_only
        )
        table = fourier_features(
            position_grid(self.index_shape),
            num_bands,
            max_resolution or self.index_shape,
            concat_pos=concat_pos,
            sine_only=sine_only,
        )  # (N, C)
        self.register_buffer("table", table, persistent=False)

    def forward(self, batch_size: int) -> torch.Tensor:
        return self.table.unsqueeze(0).expand(batch_size, -1, -1)  # (B, N, C)


class TrainablePositionEncoding(PositionEncoding):
    """A learned (N, C) table, repeated over the batch: -> (B, N, C)."""

    def __init__(self, num_positions: int, num_channels: int, init_scale: float = 0.02) -> None:
        super().__init__()
        if num_positions < 1 or num_channels < 1:
            raise ValueError(
                f"num_positions={num_positions} and num_channels={num_channels} must be >= 1"
            )
        self.num_positions = num_positions
        self.num_channels = num_channels
        self.table = nn.Parameter(torch.empty(num_positions, num_channels))
        nn.init.trunc_normal_(self.table, std=init_scale, a=-2 * init_scale, b=2 * init_scale)

    def forward(self, batch_size: int) -> torch.Tensor:
        return self.table.unsqueeze(0).expand(batch_size, -1, -1)  # (B, N, C)


class ProjectedPositionEncoding(PositionEncoding):
    """Another encoding followed by a trainable linear projection: -> (B, N, num_output_channels).

    The projection acts on each position's channels alone, so it is computed once on the
    (1, N, C) table and the result expanded over the batch.
    """

    def __init__(self, encoding: PositionEncoding, num_output_channels: int) -> None:
        super().__init__()
        if num_output_channels < 1:
            raise ValueError(f"num_output_channels must be >= 1, got {num_output_channels}")
        self.encoding = encoding
        self.projection = nn.Linear(encoding.num_channels, num_output_channels)
        self.num_positions = encoding.num_positions
        self.num_channels = num_output_channels

    def forward(self, batch_size: int) -> torch.Tensor:
        projected = self.projection(self.encoding(1))  # (1, N, C_out)
        return projected.expand(batch_size, -1, -1)  # (B, N, C_out)
