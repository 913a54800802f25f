"""Perceiver IO: an encoder into a latent array and a decoder out of it."""

from __future__ import annotations

import torch
from torch import nn


class PerceiverIO(nn.Module):
    """Composes an encoder and a decoder; both are injected by a task builder."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self.encoder(x, pad_mask))
