"""Perceiver IO whose decoder queries are the encoder's adapted inputs (optical flow)."""

from __future__ import annotations

import torch
from torch import nn

from perceiver.encoder import PerceiverEncoder


class InputQueryPerceiverIO(nn.Module):
    """x -> adapter -> (B, M, C_in); encoder -> latents; decoder(latents, queries=inputs).

    The decoder is any module called as ``decoder(latents, queries)``, e.g.
    ``InputQueryDecoder``; state-dict keys are ``encoder.*`` and ``decoder.*`` as in
    ``PerceiverIO``.
    """

    def __init__(self, encoder: PerceiverEncoder, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        inputs = self.encoder.input_adapter(x)  # (B, M, C_in)
        latents = self.encoder.encode(inputs, pad_mask)  # (B, L, C)
        return self.decoder(latents, inputs)
