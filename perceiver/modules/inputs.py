"""The contract every input adapter meets, so encoders can be built around any of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn


class SharedSegment(NamedTuple):
    """``n`` consecutive positions of a batch-shared table whose channels are ``[varying | row]``.

    ``varying`` (n, k) differs between the positions (e.g. Fourier features); ``row`` (C - k,)
    is the same at each of them (e.g. a trainable padding embedding or a mask token).
    """

    varying: torch.Tensor  # (n, k)
    row: torch.Tensor  # (C - k,)


class SegmentedTable:
    """A batch-shared (M, C) table kept as segments of positions (``SharedSegment``).

    A multimodal input table is mostly per-modality constants (padding embeddings, mask
    tokens) next to each modality's position encoding; kept this way, the shared-position
    cross-attention (``perceiver.modules.attention.input_space``) works on the segments and
    never builds the (M, C) table or a dense gradient of it. ``materialize()`` builds it for
    everything else.
    """

    def __init__(self, segments: Sequence[SharedSegment]) -> None:
        if not segments:
            raise ValueError("a segmented table needs at least one segment")
        widths = {s.varying.shape[1] + s.row.shape[0] for s in segments}
        if len(widths) != 1 or any(s.varying.dim() != 2 or s.row.dim() != 1 for s in segments):
            raise ValueError("segments must be (n, k) varying and (C - k,) row, with one C")
        self.segments = tuple(segments)
        self.num_channels = widths.pop()

    @property
    def shape(self) -> torch.Size:
        return torch.Size((sum(s.varying.shape[0] for s in self.segments), self.num_channels))

    @property
    def dtype(self) -> torch.dtype:
        return self.segments[0].varying.dtype

    def to(self, dtype: torch.dtype) -> SegmentedTable:
        return SegmentedTable([SharedSegment(v.to(dtype), r.to(dtype)) for v, r in self.segments])

    def materialize(self) -> torch.Tensor:
        """The (M, C) table."""
        return torch.cat(
            [torch.cat([v, r.expand(v.shape[0], -1)], dim=-1) for v, r in self.segments], dim=0
        )  # (M, C)


class SharedPositionInputs(NamedTuple):
    """An adapter's output split into per-sample channels and batch-shared position channels.

    The full input array is ``[per_sample | shared]`` along the channels: ``per_sample``
    (B, M, Cp) differs between samples, ``shared`` (M, Cf) is the same for every sample (a
    position encoding, or a ``SegmentedTable``). Encoders use the split to normalise and
    attend over the inputs without repeating the shared channels' work per sample
    (``perceiver.modules.attention.input_space``).
    """

    per_sample: torch.Tensor  # (B, M, Cp)
    shared: torch.Tensor | SegmentedTable  # (M, Cf)

    def shared_table(self) -> torch.Tensor:
        """The (M, Cf) shared channels as one tensor, in ``per_sample``'s dtype."""
        shared = self.shared
        table = shared.materialize() if isinstance(shared, SegmentedTable) else shared
        return table.to(self.per_sample.dtype)

    def materialize(self) -> torch.Tensor:
        """The full (B, M, Cp + Cf) input array, in ``per_sample``'s dtype."""
        batch_size = self.per_sample.shape[0]
        shared = self.shared_table().unsqueeze(0).expand(batch_size, -1, -1)
        return torch.cat([self.per_sample, shared], dim=-1)


def cast_inputs(
    inputs: torch.Tensor | SharedPositionInputs, dtype: torch.dtype
) -> torch.Tensor | SharedPositionInputs:
    """An adapter's output in the model's compute ``dtype`` (e.g. bf16 weights, while an
    adapter without parameters scales uint8 pixels with float32 constants)."""
    if isinstance(inputs, SharedPositionInputs):
        if inputs.per_sample.dtype == dtype:
            return inputs
        shared = inputs.shared.to(dtype)
        return SharedPositionInputs(inputs.per_sample.to(dtype), shared)
    return inputs.to(dtype) if inputs.is_floating_point() and inputs.dtype != dtype else inputs


class InputAdapter(nn.Module):
    """Maps a modality's raw tensor to (B, M, num_input_channels) input positions.

    An adapter whose last channels are the same for every sample (position features) may
    also implement ``forward_shared``; ``forward(x)`` must equal
    ``forward_shared(x).materialize()`` then.
    """

    num_input_channels: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_shared(self, x: torch.Tensor) -> SharedPositionInputs | None:
        """``x`` -> its inputs split into per-sample and batch-shared channels, or ``None``
        when this adapter has no batch-shared channels (the default)."""
        return None
