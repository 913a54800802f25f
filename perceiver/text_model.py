"""Perceiver IO over token sequences, accepting Hugging Face style attention masks.

``PerceiverIO`` takes a pad mask (True where padded); tokenizers and Hugging Face models pass
an ``attention_mask`` (1 = attend, 0 = padding) instead. ``TextPerceiverIO`` accepts either,
with the same submodules and state-dict keys as ``PerceiverIO``.
"""

from __future__ import annotations

import torch

from perceiver.model import PerceiverIO


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
        return super().forward(x, pad_mask)
