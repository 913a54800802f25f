"""Multimodal decoder: per-modality output queries, one shared cross-attention to the latents.

Perceiver IO's Kinetics autoencoder (Hugging Face's ``PerceiverMultimodalDecoder``) builds a
query for every output it reconstructs: Fourier features of each video pixel's (t, y, x)
and of each audio patch's index, and one trainable query for the label. Each modality's
queries are padded to a common width ``C_q = max_m C_m + min_padding_size`` with a trainable
per-modality embedding, concatenated in the decoder's modality order, and decoded together by
one cross-attention layer (no query residual) and a linear head to ``num_output_channels``;
postprocessors (``perceiver.postprocessors``) then turn each modality's outputs into pixels,
samples or logits.

Every query attends to the latents independently of the others, so any subset of the outputs
can be decoded on its own: ``output_indices`` names, per modality, which outputs (flat,
row-major indices of that modality's grid) to decode. A whole 16x224x224 video is decoded
piecewise this way (``MultimodalAutoencoder.reconstruct``), and the pieces equal one-shot
decoding. Fourier queries are computed for the requested positions only, never for the whole
grid. Their coordinates are ``-1 + 2 * i / n`` along an axis of n outputs (the grid that
Perceiver IO's subsampled decoding uses, and what its checkpoints were trained on), not the
``linspace(-1, 1, n)`` of the input encodings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from perceiver.attention import CrossAttentionLayer
from perceiver.position import fourier_features, num_fourier_channels

OutputIndices = Mapping[str, torch.Tensor | None]


class OutputQuery(nn.Module):
    """Queries of one modality's ``num_outputs`` outputs: (n,) flat indices -> (n, C)."""

    num_outputs: int
    num_channels: int
    index_shape: tuple[int, ...]

    def forward(self, indices: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class FourierOutputQuery(OutputQuery):
    """Fourier features of each output's coordinates on the ``index_shape`` grid."""

    def __init__(
        self,
        index_shape: Sequence[int],
        num_frequency_bands: int,
        max_resolution: Sequence[int] | None = None,
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
        self.index_shape = shape
        self.num_frequency_bands = num_frequency_bands
        self.max_resolution = resolution
        self.num_outputs = math.prod(shape)
        self.num_channels = num_fourier_channels(len(shape), num_frequency_bands)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        """indices: (n,) -> (n, C)."""
        coords = torch.stack(torch.unravel_index(indices, self.index_shape), dim=-1)  # (n, D)
        sizes = torch.tensor(self.index_shape, device=indices.device)
        positions = -1 + 2 * coords / sizes  # (n, D) in [-1, 1)
        return fourier_features(positions, self.num_frequency_bands, self.max_resolution)


class TrainableOutputQuery(OutputQuery):
    """A learned (num_outputs, C) table; output i's query is row i."""

    def __init__(self, num_outputs: int, num_channels: int, init_scale: float = 0.02) -> None:
        super().__init__()
        if num_outputs < 1 or num_channels < 1:
            raise ValueError(
                f"num_outputs={num_outputs} and num_channels={num_channels} must be >= 1"
            )
        self.index_shape = (num_outputs,)
        self.num_outputs = num_outputs
        self.num_channels = num_channels
        self.table = nn.Parameter(torch.empty(num_outputs, num_channels))
        nn.init.trunc_normal_(self.table, std=init_scale, a=-2 * init_scale, b=2 * init_scale)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self.table[indices]  # (n, C)


class MultimodalDecoder(nn.Module):
    """Latents (B, L, C_latent) -> {modality: (B, n_m, num_output_channels)}.

    ``output_indices=None`` decodes every output of every modality; a mapping decodes only
    its modalities, each at the given (n_m,) flat indices (None: all of that modality's
    outputs). ``chunk_size`` bounds the queries per cross-attention call.
    """

    def __init__(
        self,
        queries: Mapping[str, OutputQuery],
        num_latent_channels: int,
        num_output_channels: int,
        min_padding_size: int = 2,
        num_cross_attention_heads: int = 1,
        num_cross_attention_qk_channels: int | None = None,
        num_cross_attention_v_channels: int | None = None,
        cross_attention_widening_factor: int = 1,
        dropout: float = 0.0,
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if not queries:
            raise ValueError("give at least one modality query, got none")
        if min_padding_size < 0:
            raise ValueError(f"min_padding_size must be >= 0, got {min_padding_size}")
        if num_output_channels < 1:
            raise ValueError(f"num_output_channels must be >= 1, got {num_output_channels}")
        self.queries = nn.ModuleDict(queries)
        self.modalities = tuple(queries)
        width = max(q.num_channels for q in queries.values()) + min_padding_size
        self.num_query_channels = width
        self.padding = nn.ParameterDict(
            {
                name: nn.Parameter(0.02 * torch.randn(1, width - q.num_channels))
                for name, q in queries.items()
            }
        )  # each (1, C_q - C_m)
        self.cross_attention = CrossAttentionLayer(
            num_heads=num_cross_attention_heads,
            num_q_input_channels=width,
            num_kv_input_channels=num_latent_channels,
            num_qk_channels=num_cross_attention_qk_channels,
            num_v_channels=num_cross_attention_v_channels,
            widening_factor=cross_attention_widening_factor,
            dropout=dropout,
            query_residual=False,
            chunk_size=chunk_size,
        )
        self.head = nn.Linear(width, num_output_channels)

    @property
    def chunk_size(self) -> int | None:
        return self.cross_attention.chunk_size

    @chunk_size.setter
    def chunk_size(self, value: int | None) -> None:
        self.cross_attention.chunk_size = value

    def num_outputs(self, modality: str) -> int:
        return self._query(modality).num_outputs

    def index_shape(self, modality: str) -> tuple[int, ...]:
        """The grid of ``modality``'s outputs (flat indices are row-major on it)."""
        return self._query(modality).index_shape

    def _query(self, modality: str) -> OutputQuery:
        if modality not in self.queries:
            raise ValueError(f"unknown modality {modality!r}; known: {list(self.modalities)}")
        query = self.queries[modality]
        assert isinstance(query, OutputQuery)  # the constructor takes OutputQuery modules
        return query

    def _indices(
        self, modality: str, indices: torch.Tensor | None, device: torch.device
    ) -> torch.Tensor:
        num = self.num_outputs(modality)
        if indices is None:
            return torch.arange(num, device=device)
        if indices.dim() != 1 or indices.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"output_indices[{modality!r}] must be a 1D integer tensor, got shape "
                f"{tuple(indices.shape)} and dtype {indices.dtype}"
            )
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= num):
            raise ValueError(
                f"output_indices[{modality!r}] must lie in [0, {num}), got values from "
                f"{int(indices.min())} to {int(indices.max())}"
            )
        return indices.to(device=device, dtype=torch.long)

    def output_queries(
        self, batch_size: int, output_indices: OutputIndices | None, device: torch.device
    ) -> tuple[torch.Tensor, dict[str, int]]:
        """The padded queries (B, N, C_q) of the requested outputs and their count per modality."""
        requested = dict.fromkeys(self.modalities) if output_indices is None else output_indices
        for name in requested:
            self._query(name)  # unknown names are errors
        parts, sizes = [], {}
        for name in self.modalities:  # the decoder's order, whatever the mapping's order
            if name not in requested:
                continue
            indices = self._indices(name, requested[name], device)
            query = self._query(name)(indices)  # (n_m, C_m)
            pad = self.padding[name].expand(query.shape[0], -1)  # (n_m, C_q - C_m)
            parts.append(torch.cat([query, pad.to(query.dtype)], dim=-1))  # (n_m, C_q)
            sizes[name] = query.shape[0]
        if not parts:
            raise ValueError("output_indices names no modality to decode")
        queries = torch.cat(parts, dim=0)  # (N, C_q)
        return queries.unsqueeze(0).expand(batch_size, -1, -1), sizes  # (B, N, C_q)

    def forward(
        self, latents: torch.Tensor, output_indices: OutputIndices | None = None
    ) -> dict[str, torch.Tensor]:
        """latents: (B, L, C_latent) -> {modality: (B, n_m, num_output_channels)}."""
        query, sizes = self.output_queries(latents.shape[0], output_indices, latents.device)
        out = self.head(self.cross_attention(query.to(latents.dtype), latents))  # (B, N, C_out)
        return dict(zip(sizes, out.split(list(sizes.values()), dim=1), strict=True))
