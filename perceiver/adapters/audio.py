"""Raw-audio input adapter: waveform samples grouped into patches, 1D Fourier over patches.

As in Perceiver IO's AudioSet models, consecutive samples form one input position (e.g. 48
samples per patch), which divides the number of positions the encoder attends to by
``samples_per_patch``; a 1D Fourier encoding of the patch index is concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange

from perceiver.modules.inputs import InputAdapter
from perceiver.modules.position import FourierPositionEncoding

INT16_SCALE = 32768.0


class AudioInputAdapter(InputAdapter):
    """(B, T) or (B, T, C_audio) waveform -> (B, T/s, s*C_audio + Fourier channels).

    ``s = samples_per_patch`` must divide ``num_samples = T``. Each position holds its patch's
    samples in (sample, channel) order. The highest Fourier band is at ``max_resolution / 2``
    (default: the number of patches; Perceiver IO's Kinetics model uses ``(num_samples,)``).
    ``int16`` PCM is scaled to [-1, 1); floating-point
    waveforms are used as they are. A (B, T) input is taken as mono when
    ``num_audio_channels`` is 1.
    """

    def __init__(
        self,
        num_samples: int,
        samples_per_patch: int,
        num_frequency_bands: int,
        num_audio_channels: int = 1,
        max_resolution: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if num_samples < 1 or num_audio_channels < 1:
            raise ValueError(
                f"num_samples={num_samples} and num_audio_channels={num_audio_channels} "
                "must be >= 1"
            )
        if samples_per_patch < 1 or num_samples % samples_per_patch:
            raise ValueError(
                f"samples_per_patch={samples_per_patch} must be >= 1 and divide "
                f"num_samples={num_samples}"
            )
        self.num_samples = num_samples
        self.samples_per_patch = samples_per_patch
        self.num_audio_channels = num_audio_channels
        self.num_patches = num_samples // samples_per_patch
        self.position_encoding = FourierPositionEncoding(
            (self.num_patches,), num_frequency_bands, max_resolution
        )
        self.num_input_channels = (
            samples_per_patch * num_audio_channels + self.position_encoding.num_channels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T) or (B, T, C_audio) -> (B, T/s, s*C_audio + P)."""
        x = self.patches(x)  # (B, N, s*C_audio)
        pos = self.position_encoding(x.shape[0])  # (B, N, P)
        return torch.cat([x, pos.to(x.dtype)], dim=-1)  # (B, N, s*C_audio + P)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T) or (B, T, C_audio) -> the patches' samples (B, T/s, s*C_audio),
        ``forward``'s channels before the position encoding."""
        if x.dim() == 2 and self.num_audio_channels == 1:
            x = x.unsqueeze(-1)  # (B, T, 1)
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.num_samples, self.num_audio_channels):
            raise ValueError(
                f"expected audio of shape (B, {self.num_samples}, {self.num_audio_channels})"
                + (f" or (B, {self.num_samples})" if self.num_audio_channels == 1 else "")
                + f", got {tuple(x.shape)}"
            )
        if x.dtype == torch.int16:
            x = x.float() / INT16_SCALE
        elif not x.is_floating_point():
            raise ValueError(f"expected int16 or floating-point audio, got dtype {x.dtype}")
        return rearrange(x, "b (n s) c -> b n (s c)", s=self.samples_per_patch)  # (B, N, s*C)
