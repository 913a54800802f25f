"""Small shared pieces of the perceiver tests."""

from __future__ import annotations

import torch
from torch import nn

from perceiver.adapters.base import InputAdapter


class IdentityAdapter(InputAdapter):
    """Passes a ready (B, M, C) array through, so encoder tests need no modality."""

    def __init__(self, num_input_channels: int) -> None:
        super().__init__()
        self.num_input_channels = num_input_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def num_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def grads(module: nn.Module) -> dict[str, torch.Tensor]:
    """Name -> gradient of every parameter (all must have one)."""
    out = {}
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} has no gradient"
        out[name] = p.grad.clone()
    return out
