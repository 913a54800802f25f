"""Output queries: what a decoder asks the latents, one query per output it produces.

Every Perceiver IO decoder is the same cross-attention from queries to the latents
(``PerceiverDecoder``); tasks differ in their queries, which are built here and nowhere else:

- ``TrainableQuery``: a learned (N, C) table, one row per output (classification: N = 1;
  masked language modelling: one per token position);
- ``FourierQuery``: Fourier features of each output's position on a grid, optionally with a
  trainable projection of them concatenated;
- ``InputQuery``: the encoder's adapted inputs themselves, one query per input position
  (optical flow: each pixel's features ask for that pixel's flow, as in DeepMind's
  ``FlowDecoder``);
- ``MultimodalQuery``: per-modality queries padded to a common width with a trainable
  per-modality embedding and concatenated (the Kinetics autoencoder).

A query is called as ``query(batch_size, inputs=None, indices=None) -> (B, N, C)``. ``indices``
asks for a subset of the outputs (flat, row-major indices of the output grid), as Perceiver
IO's subsampled decoding does; every query attends to the latents on its own, so any subset
decodes to the same values as the whole. Fourier coordinates follow DeepMind's
``BasicDecoder``: ``linspace(-1, 1, n)`` per axis for the whole grid, ``-1 + 2 * i / n`` for
subsampled indices (the coordinates its checkpoints were trained on when subsampling).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from perceiver.modules.inputs import SharedPositionInputs
from perceiver.modules.multimodal_autoencoder import OutputIndices
from perceiver.modules.position import (
    fourier_features,
    num_fourier_channels,
    position_grid,
)


class OutputQuery(nn.Module):
    """Builds a decoder's queries: ``(batch_size, inputs, indices) -> (B, N, num_channels)``."""

    num_channels: int

    def forward(
        self, batch_size: int, inputs: Any = None, indices: Any = None
    ) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _check_indices(indices: torch.Tensor, num_outputs: int, what: str) -> torch.Tensor:
    """(n,) integer indices in [0, num_outputs) as int64, else a ValueError naming ``what``."""
    if indices.dim() != 1 or indices.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            f"{what} must be a 1D integer tensor, got shape {tuple(indices.shape)} and dtype "
            f"{indices.dtype}"
        )
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= num_outputs):
        raise ValueError(
            f"{what} must lie in [0, {num_outputs}), got values from {int(indices.min())} to "
            f"{int(indices.max())}"
        )
    return indices.long()


class TrainableQuery(OutputQuery):
    """A learned (num_outputs, C) table; output i's query is row i."""

    def __init__(self, num_outputs: int, num_channels: int, init_scale: float = 0.02) -> None:
        super().__init__()
        if num_outputs < 1 or num_channels < 1:
            raise ValueError(
                f"num_outputs={num_outputs} and num_channels={num_channels} must be >= 1"
            )
        self.index_shape: tuple[int, ...] = (num_outputs,)
        self.num_outputs = num_outputs
        self.num_channels = num_channels
        self.table = nn.Parameter(torch.empty(num_outputs, num_channels))
        nn.init.trunc_normal_(self.table, std=init_scale, a=-2 * init_scale, b=2 * init_scale)

    def forward(
        self, batch_size: int, inputs: Any = None, indices: torch.Tensor | None = None
    ) -> torch.Tensor:
        rows: torch.Tensor = self.table  # (N, C)
        if indices is not None:
            rows = rows[_check_indices(indices, self.num_outputs, "indices").to(rows.device)]
        return rows.unsqueeze(0).expand(batch_size, -1, -1)  # (B, n, C)


class FourierQuery(OutputQuery):
    """Fourier features of each output's coordinates on the ``index_shape`` grid.

    ``num_projection_channels`` concatenates a trainable linear projection of the features,
    giving the query learned channels while keeping the fixed position signal. Features are
    computed for the requested outputs only, when asked: a 16x224x224 video grid is never
    held whole.
    """

    anchor: torch.Tensor

    def __init__(
        self,
        index_shape: Sequence[int],
        num_frequency_bands: int,
        max_resolution: Sequence[int] | None = None,
        num_projection_channels: int | None = None,
    ) -> None:
        super().__init__()
        shape = tuple(index_shape)
        if not shape or min(shape) < 1:
            raise ValueError(f"index_shape must be non-empty and positive, got {shape}")
        if num_frequency_bands < 1:
            raise ValueError(f"num_frequency_bands must be >= 1, got {num_frequency_bands}")
        resolution = tuple(max_resolution or shape)
        if len(resolution) != len(shape):
            raise ValueError(
                f"max_resolution={resolution} needs one entry per axis of index_shape={shape}"
            )
        if num_projection_channels is not None and num_projection_channels < 1:
            raise ValueError(f"num_projection_channels must be >= 1, got {num_projection_channels}")
        self.index_shape = shape
        self.num_frequency_bands = num_frequency_bands
        self.max_resolution = resolution
        self.num_outputs = math.prod(shape)
        width = num_fourier_channels(len(shape), num_frequency_bands)
        self.projection = (
            nn.Linear(width, num_projection_channels) if num_projection_channels else None
        )
        self.num_channels = width + (num_projection_channels or 0)
        # Empty; follows the module's device and dtype, which the features are computed in.
        self.register_buffer("anchor", torch.empty(0), persistent=False)

    def features(self, indices: torch.Tensor | None) -> torch.Tensor:
        """The (n, C_f) Fourier features of the requested outputs (all: the whole grid)."""
        anchor = self.anchor
        if indices is None:
            positions = position_grid(self.index_shape).to(anchor)  # (N, D), linspace(-1, 1)
        else:
            indices = _check_indices(indices, self.num_outputs, "indices").to(anchor.device)
            coords = torch.stack(torch.unravel_index(indices, self.index_shape), dim=-1)  # (n, D)
            sizes = torch.tensor(self.index_shape, device=anchor.device)
            positions = (-1 + 2 * coords / sizes).to(anchor.dtype)  # (n, D) in [-1, 1)
        return fourier_features(positions, self.num_frequency_bands, self.max_resolution)

    def forward(
        self, batch_size: int, inputs: Any = None, indices: torch.Tensor | None = None
    ) -> torch.Tensor:
        query = self.features(indices)  # (n, C_f)
        if self.projection is not None:
            query = torch.cat([query, self.projection(query)], dim=-1)  # (n, C_f + C_p)
        return query.unsqueeze(0).expand(batch_size, -1, -1)  # (B, n, C)


class InputQuery(OutputQuery):
    """The encoder's adapted inputs (B, M, C) are the queries: one output per input position."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        if num_channels < 1:
            raise ValueError(f"num_channels must be >= 1, got {num_channels}")
        self.num_channels = num_channels

    def forward(
        self,
        batch_size: int,
        inputs: torch.Tensor | SharedPositionInputs | None = None,
        indices: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if inputs is None:
            raise ValueError("InputQuery decodes from the encoder's inputs; none were given")
        if isinstance(inputs, SharedPositionInputs):
            inputs = inputs.materialize()  # (B, M, C)
        if inputs.dim() != 3 or inputs.shape[-1] != self.num_channels:
            raise ValueError(
                f"expected inputs of shape (B, M, {self.num_channels}), got {tuple(inputs.shape)}"
            )
        if indices is not None:
            inputs = inputs[:, _check_indices(indices, inputs.shape[1], "indices")]
        return inputs  # (B, n, C)


class MultimodalQuery(OutputQuery):
    """Each modality's queries, padded to ``C = max_m C_m + min_padding_size`` and concatenated.

    Padding is a trainable per-modality (C - C_m) vector, the same at each of the modality's
    positions (it also tells the cross-attention which modality a query belongs to).
    Modalities are concatenated in the order of ``queries``; ``indices`` (an
    ``OutputIndices`` mapping) decodes only the modalities it names, each at the given flat
    indices (None: all of that modality's outputs; ``indices=None``: every output).
    """

    def __init__(self, queries: Mapping[str, OutputQuery], min_padding_size: int = 2) -> None:
        super().__init__()
        if not queries:
            raise ValueError("give at least one modality query, got none")
        if min_padding_size < 0:
            raise ValueError(f"min_padding_size must be >= 0, got {min_padding_size}")
        self.grids: dict[str, tuple[int, ...]] = {}  # modality -> its output grid
        for name, query in queries.items():
            grid = getattr(query, "index_shape", None)
            if grid is None:
                raise ValueError(f"the {name!r} query does not say which outputs it has")
            self.grids[name] = tuple(grid)
        self.queries = nn.ModuleDict(queries)
        self.modalities = tuple(queries)
        width = max(q.num_channels for q in queries.values()) + min_padding_size
        self.num_channels = width
        self.padding = nn.ParameterDict(
            {
                name: nn.Parameter(0.02 * torch.randn(1, width - q.num_channels))
                for name, q in queries.items()
            }
        )  # each (1, C - C_m)

    def query(self, modality: str) -> OutputQuery:
        if modality not in self.queries:
            raise ValueError(f"unknown modality {modality!r}; known: {list(self.modalities)}")
        return cast(OutputQuery, self.queries[modality])

    def num_outputs(self, modality: str) -> int:
        return math.prod(self.index_shape(modality))

    def index_shape(self, modality: str) -> tuple[int, ...]:
        """The grid of ``modality``'s outputs (flat indices are row-major on it)."""
        self.query(modality)  # unknown names are errors
        return self.grids[modality]

    def resolve(
        self, indices: OutputIndices | None, device: torch.device | None = None
    ) -> dict[str, torch.Tensor]:
        """The (n_m,) indices to decode per requested modality, in the modalities' order."""
        requested = dict.fromkeys(self.modalities) if indices is None else indices
        for name in requested:
            self.query(name)  # unknown names are errors
        resolved = {}
        for name in self.modalities:  # the query's order, whatever the mapping's order
            if name not in requested:
                continue
            wanted = requested[name]
            if wanted is None:
                resolved[name] = torch.arange(self.num_outputs(name), device=device)
            else:
                resolved[name] = _check_indices(
                    wanted, self.num_outputs(name), f"output_indices[{name!r}]"
                ).to(device)
        if not resolved:
            raise ValueError("output_indices names no modality to decode")
        return resolved

    def sizes(self, indices: OutputIndices | None) -> dict[str, int]:
        """How many outputs each requested modality decodes, in the decoder's order."""
        return {name: int(idx.numel()) for name, idx in self.resolve(indices).items()}

    def forward(
        self, batch_size: int, inputs: Any = None, indices: OutputIndices | None = None
    ) -> torch.Tensor:
        parts = []
        device = self.padding[self.modalities[0]].device
        for name, idx in self.resolve(indices, device).items():
            query = self.query(name)(1, indices=idx)[0]  # (n_m, C_m)
            pad = self.padding[name].expand(query.shape[0], -1)  # (n_m, C - C_m)
            parts.append(torch.cat([query, pad.to(query.dtype)], dim=-1))  # (n_m, C)
        queries = torch.cat(parts, dim=0)  # (N, C)
        return queries.unsqueeze(0).expand(batch_size, -1, -1)  # (B, N, C)
