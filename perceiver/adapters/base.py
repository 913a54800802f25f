"""The contract every input adapter meets, so encoders can be built around any of them."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class SharedPositionInputs(NamedTuple):
    """An adapter's output split into per-sample channels and batch-shared position channels.

    The full input array is ``[per_sample | shared]`` along the channels: ``per_sample``
    (B, M, Cp) differs between samples, ``shared`` (M, Cf) is the same for every sample (a
    position encoding). Encoders use the split to normalise and attend over the inputs
    without repeating the shared channels' work per sample (``perceiver.factorized``).
    """

    per_sample: torch.Tensor  # (B, M, Cp)
    shared: torch.Tensor  # (M, Cf)

    def materialize(self) -> torch.Tensor:
        """The full (B, M, Cp + Cf) input array, in ``per_sample``'s dtype."""
        batch_size = self.per_sample.shape[0]
        shared = self.shared.to(self.per_sample.dtype).unsqueeze(0).expand(batch_size, -1, -1)
        return torch.cat([self.per_sample, shared], dim=-1)


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
