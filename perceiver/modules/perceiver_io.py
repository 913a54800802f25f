"""Perceiver IO: an encoder into a latent array and a decoder out of it.

``PerceiverIO`` composes an encoder and a decoder, both injected by a task builder
(``perceiver.builders``). The decoder is given the latents and the encoder's adapted inputs,
so a decoder whose queries are the inputs (optical flow's ``InputQuery``) needs no other
model class; every other decoder ignores them.

``TextPerceiverIO`` also accepts Hugging Face style ``attention_mask`` (1 = attend,
0 = padding) beside the pad mask (True where padded), with the same submodules and
state-dict keys.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from perceiver.modules.encoder import PerceiverEncoder


class PerceiverIO(nn.Module):
    """x -> ``encoder`` -> latents (B, L, C) -> ``decoder(latents, inputs)`` -> outputs."""

    def __init__(self, encoder: PerceiverEncoder, decoder: nn.Module) -> None:
        super().__init__()
        latent_width = encoder.latents.shape[1]
        decoder_width = getattr(decoder, "num_latent_channels", latent_width)
        if decoder_width != latent_width:
            raise ValueError(
                f"the decoder reads {decoder_width}-channel latents, the encoder makes "
                f"{latent_width}"
            )
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: Any, pad_mask: torch.Tensor | None = None) -> Any:
        inputs = self.encoder.adapt(x, pad_mask)  # (B, M, C_in), maybe split
        latents = self.encoder.encode(inputs, pad_mask)  # (B, L, C)
        return self.decoder(latents, inputs)


class TextPerceiverIO(PerceiverIO):
    """(B, N) token ids with an optional (B, N) pad mask or attention mask -> decoder output."""

    def forward(
        self,
        x: torch.Tensor,
        pad_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if attention_mask is not None:
            if pad_mask is not None:
                raise ValueError("give pad_mask or attention_mask, not both")
            if tuple(attention_mask.shape) != tuple(x.shape[:2]):
                raise ValueError(
                    f"attention_mask of shape {tuple(attention_mask.shape)} does not match the "
                    f"inputs' (B, N) = {tuple(x.shape[:2])}"
                )
            pad_mask = attention_mask == 0  # (B, N), True where padded
        out: torch.Tensor = super().forward(x, pad_mask)
        return out
