"""Frame-stack input adapter for optical flow: per-pixel features of consecutive frames.

Perceiver IO's optical-flow model stacks, for every pixel, the features of T consecutive
frames (for Sintel/KITTI: T = 2 frames of 3x3 RGB patches, 27 channels each, so 54 values),
projects them with a learned linear map and concatenates 2D Fourier features of the pixel
position. Frames arrive channels-first, (B, T, C, H, W), as in Hugging Face's
``PerceiverForOpticalFlow``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import nn

from perceiver.adapters.base import InputAdapter
from perceiver.adapters.image import grid_position_encoding
from perceiver.position import PositionEncoding


class FrameStackInputAdapter(InputAdapter):
    """(B, T, C, H, W) frames -> (B, H*W, num_output_channels + position channels).

    Each pixel's T*C values, in (frame, channel) order, go through one linear layer.
    """

    def __init__(
        self,
        frames_shape: Sequence[int],
        num_output_channels: int,
        num_frequency_bands: int | None,
        max_resolution: Sequence[int] | None = None,
        position_encoding: PositionEncoding | None = None,
    ) -> None:
        super().__init__()
        if len(frames_shape) != 4 or min(frames_shape) < 1:
            raise ValueError(f"frames_shape must be positive (T, C, H, W), got {frames_shape}")
        if num_output_channels < 1:
            raise ValueError(f"num_output_channels must be >= 1, got {num_output_channels}")
        frames, channels, height, width = frames_shape
        self.frames_shape = (frames, channels, height, width)
        self.grid_shape = (height, width)
        self.projection = nn.Linear(frames * channels, num_output_channels)
        self.position_encoding = grid_position_encoding(
            self.grid_shape, num_frequency_bands, max_resolution, position_encoding
        )
        self.num_input_channels = num_output_channels + self.position_encoding.num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C, H, W) -> (B, H*W, C_out + P)."""
        if tuple(x.shape[1:]) != self.frames_shape:
            raise ValueError(
                f"expected frames of shape (B, {', '.join(map(str, self.frames_shape))}), "
                f"got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"expected floating-point frames, got dtype {x.dtype}")
        x = self.projection(rearrange(x, "b t c h w -> b (h w) (t c)"))  # (B, M, C_out)
        pos = self.position_encoding(x.shape[0])  # (B, M, P)
        return torch.cat([x, pos.to(x.dtype)], dim=-1)  # (B, M, C_out + P)
