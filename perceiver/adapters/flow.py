"""Optical-flow input adapter: a frame pair becomes one input position per pixel.

Perceiver IO's optical-flow model (DeepMind's ``optical_flow`` colab) reads, for each pixel,
the 3x3 neighbourhood of that pixel in both frames: 2 frames x 27 values = 54 channels,
projected by a learned linear map to 64 and concatenated with 2D Fourier features of the
pixel. The adapter takes what the shards hold, (B, 2, H, W, 3) uint8 frames, and does all of
it itself:

1. ``uint8`` frames are scaled to [-1, 1] (``x / 255 * 2 - 1``, DeepMind's ``normalize``);
   floating-point frames are taken to be scaled already.
2. Each frame's ``patch_size`` x ``patch_size`` neighbourhoods, with zero padding at the
   borders (TensorFlow 'SAME'), ordered (kernel row, kernel column, channel) per frame and
   frames in order: DeepMind's ``extract_patches`` layout, which converted weights expect.
3. The projection of those T*k*k*C values per pixel. It is computed as one convolution of the
   stacked frames with the projection's weights rearranged to a kernel, the same function
   without building the (B, T, k*k*C, H, W) patch tensor; ``extract_flow_patches`` builds it
   for anyone who wants Hugging Face's input layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from perceiver.adapters.image import grid_position_encoding
from perceiver.modules.inputs import InputAdapter
from perceiver.modules.position import PositionEncoding


def normalize_frames(frames: torch.Tensor) -> torch.Tensor:
    """``uint8`` frames -> float in [-1, 1]; floating-point frames are returned as they are."""
    if frames.dtype == torch.uint8:
        return frames.float() / 255.0 * 2 - 1
    if not frames.is_floating_point():
        raise ValueError(f"expected uint8 or floating-point frames, got dtype {frames.dtype}")
    return frames


def extract_flow_patches(frames: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """(B, T, H, W, C) frames -> (B, T, kernel*kernel*C, H, W) per-pixel patches.

    DeepMind's layout (and Hugging Face's ``PerceiverForOpticalFlow`` input): each pixel's
    values in (kernel row, kernel column, channel) order, borders zero-padded.
    """
    if frames.ndim != 5:
        raise ValueError(f"frames must be (B, T, H, W, C), got shape {tuple(frames.shape)}")
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be a positive odd number, got {kernel}")
    b, t = frames.shape[:2]
    x = rearrange(frames, "b t h w c -> (b t) c h w")
    pad = kernel // 2
    x = F.pad(x, (pad, pad, pad, pad))  # (B*T, C, H + 2p, W + 2p)
    patches = x.unfold(2, kernel, 1).unfold(3, kernel, 1)  # (B*T, C, H, W, k, k)
    patches = rearrange(patches, "bt c h w kh kw -> bt (kh kw c) h w")
    return rearrange(patches, "(b t) k h w -> b t k h w", b=b, t=t)


class FlowInputAdapter(InputAdapter):
    """(B, T, H, W, C) frames -> (B, H*W, num_output_channels + position channels)."""

    def __init__(
        self,
        frames_shape: Sequence[int],
        num_output_channels: int,
        num_frequency_bands: int | None,
        patch_size: int = 3,
        max_resolution: Sequence[int] | None = None,
        position_encoding: PositionEncoding | None = None,
    ) -> None:
        super().__init__()
        if len(frames_shape) != 4 or min(frames_shape) < 1:
            raise ValueError(f"frames_shape must be positive (T, H, W, C), got {frames_shape}")
        if num_output_channels < 1:
            raise ValueError(f"num_output_channels must be >= 1, got {num_output_channels}")
        if patch_size < 1 or patch_size % 2 == 0:
            raise ValueError(f"patch_size must be a positive odd number, got {patch_size}")
        frames, height, width, channels = frames_shape
        self.frames_shape = (frames, height, width, channels)
        self.patch_size = patch_size
        self.grid_shape = (height, width)
        self.projection = nn.Linear(
            frames * patch_size * patch_size * channels, num_output_channels
        )
        self.position_encoding = grid_position_encoding(
            self.grid_shape, num_frequency_bands, max_resolution, position_encoding
        )
        self.num_input_channels = num_output_channels + self.position_encoding.num_channels

    def projection_kernel(self) -> torch.Tensor:
        """The projection as a conv kernel (C_out, T*C, k, k) over the stacked frames."""
        frames, _, _, channels = self.frames_shape
        k = self.patch_size
        weight = self.projection.weight.view(-1, frames, k, k, channels)  # (C_out, T, k, k, C)
        return rearrange(weight, "o t kh kw c -> o (t c) kh kw")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, H, W, C) -> (B, H*W, C_out + P)."""
        if tuple(x.shape[1:]) != self.frames_shape:
            raise ValueError(
                f"expected frames of shape (B, {', '.join(map(str, self.frames_shape))}), "
                f"got {tuple(x.shape)}"
            )
        x = normalize_frames(x).to(self.projection.weight.dtype)  # (B, T, H, W, C)
        stacked = rearrange(x, "b t h w c -> b (t c) h w")  # (B, T*C, H, W)
        projected = F.conv2d(
            stacked, self.projection_kernel(), self.projection.bias, padding=self.patch_size // 2
        )  # (B, C_out, H, W)
        features = rearrange(projected, "b c h w -> b (h w) c")  # (B, M, C_out)
        pos = self.position_encoding(x.shape[0])  # (B, M, P)
        return torch.cat([features, pos.to(features.dtype)], dim=-1)  # (B, M, C_out + P)
