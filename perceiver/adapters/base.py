"""The contract every input adapter meets, so encoders can be built around any of them."""

from __future__ import annotations

import torch
from torch import nn


class InputAdapter(nn.Module):
    """Maps a modality's raw tensor to (B, M, num_input_channels) input positions."""

    num_input_channels: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
