"""Postprocessors: a decoder's per-position outputs -> a modality's values.

Perceiver IO's multimodal decoder emits ``num_output_channels`` features per decoded output;
a small linear head per modality turns them into what that modality is made of (Hugging
Face's ``PerceiverProjectionPostprocessor``, ``PerceiverAudioPostprocessor`` and
``PerceiverClassificationPostprocessor``):

- ``ProjectionPostprocessor``: (B, n, C) -> (B, n, C_out), e.g. RGB values of n pixels;
- ``PatchPostprocessor``: (B, n, C) -> (B, n * s), the s samples of each of n audio patches;
- ``ClassificationPostprocessor``: (B, 1, C) -> (B, num_classes) logits.

``MultimodalPostprocessor`` applies one of them per modality to a decoder's output dict.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def _check(x: torch.Tensor, channels: int, kind: str) -> None:
    if x.dim() != 3 or x.shape[-1] != channels:
        raise ValueError(f"{kind} expects (B, n, {channels}) inputs, got {tuple(x.shape)}")


class ProjectionPostprocessor(nn.Module):
    """(B, n, C) -> (B, n, num_output_channels): a linear map of each output."""

    def __init__(self, num_input_channels: int, num_output_channels: int) -> None:
        super().__init__()
        self.projection = nn.Linear(num_input_channels, num_output_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, self.projection.in_features, "ProjectionPostprocessor")
        return self.projection(x)  # (B, n, C_out)


class PatchPostprocessor(nn.Module):
    """(B, n, C) -> (B, n * samples_per_patch): each output becomes a patch of samples."""

    def __init__(self, num_input_channels: int, samples_per_patch: int) -> None:
        super().__init__()
        if samples_per_patch < 1:
            raise ValueError(f"samples_per_patch must be >= 1, got {samples_per_patch}")
        self.projection = nn.Linear(num_input_channels, samples_per_patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, self.projection.in_features, "PatchPostprocessor")
        return self.projection(x).flatten(1)  # (B, n * s), patches in order


class ClassificationPostprocessor(nn.Module):
    """(B, 1, C) -> (B, num_classes) logits of the single label output."""

    def __init__(self, num_input_channels: int, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.projection = nn.Linear(num_input_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, self.projection.in_features, "ClassificationPostprocessor")
        if x.shape[1] != 1:
            raise ValueError(f"ClassificationPostprocessor expects one output, got {x.shape[1]}")
        return self.projection(x[:, 0])  # (B, K)


class MultimodalPostprocessor(nn.Module):
    """{modality: decoder output} -> {modality: postprocessed}; only the modalities given."""

    def __init__(self, postprocessors: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.modalities = nn.ModuleDict(postprocessors)

    def forward(self, outputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        unknown = sorted(set(outputs) - set(self.modalities))
        if unknown:
            raise ValueError(f"no postprocessor for the modalities {unknown}")
        return {name: self.modalities[name](x) for name, x in outputs.items()}
