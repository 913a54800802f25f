"""Video input adapter: space-time patches with 3D Fourier position features.

As in Perceiver IO's Kinetics autoencoding model, each non-overlapping t x h x w block of a
(T, H, W, C) clip becomes one input position holding the block's pixels, and 3D Fourier
features of the block's (time, row, column) grid coordinates are concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange

from perceiver.modules.inputs import InputAdapter
from perceiver.modules.position import FourierPositionEncoding


class VideoInputAdapter(InputAdapter):
    """(B, T, H, W, C) clip -> (B, (T/t)*(H/h)*(W/w), t*h*w*C + Fourier channels).

    Positions are in (time, row, column) row-major order; each holds its patch's pixels in
    (t, h, w, channel) order. ``uint8`` clips are scaled to [0, 1], floating-point clips are
    taken as they are; then, if given, ``mean``/``std`` (one entry per channel) normalise.

    ``max_resolution`` sets the highest Fourier band per axis (default: the patch grid;
    Perceiver IO's Kinetics model uses the clip's (T, H, W)). ``channels_first=True`` takes
    (B, T, C, H, W) clips, as Hugging Face's video models do; ``video_shape`` is (T, H, W, C)
    either way.
    """

    mean: torch.Tensor | None
    std: torch.Tensor | None

    def __init__(
        self,
        video_shape: Sequence[int],
        patch_shape: Sequence[int],
        num_frequency_bands: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        max_resolution: Sequence[int] | None = None,
        channels_first: bool = False,
    ) -> None:
        super().__init__()
        if len(video_shape) != 4 or min(video_shape) < 1:
            raise ValueError(f"video_shape must be positive (T, H, W, C), got {tuple(video_shape)}")
        if len(patch_shape) != 3 or min(patch_shape) < 1:
            raise ValueError(f"patch_shape must be positive (t, h, w), got {tuple(patch_shape)}")
        frames, height, width, channels = video_shape
        if any(n % p for n, p in zip((frames, height, width), patch_shape, strict=True)):
            raise ValueError(
                f"patch_shape={tuple(patch_shape)} must divide (T, H, W)={(frames, height, width)}"
            )
        if (mean is None) != (std is None):
            raise ValueError(f"give both mean and std or neither, got mean={mean}, std={std}")
        if mean is not None and std is not None and (len(mean) != channels or len(std) != channels):
            raise ValueError(
                f"mean {tuple(mean)} and std {tuple(std)} need one entry per channel ({channels})"
            )
        self.video_shape = (frames, height, width, channels)
        self.patch_shape = (patch_shape[0], patch_shape[1], patch_shape[2])
        self.grid_shape = (
            frames // patch_shape[0],
            height // patch_shape[1],
            width // patch_shape[2],
        )
        self.register_buffer("mean", None if mean is None else torch.tensor(mean), persistent=False)
        self.register_buffer("std", None if std is None else torch.tensor(std), persistent=False)
        self.channels_first = channels_first
        self.position_encoding = FourierPositionEncoding(
            self.grid_shape, num_frequency_bands, max_resolution
        )
        patch_channels = patch_shape[0] * patch_shape[1] * patch_shape[2] * channels
        self.num_input_channels = patch_channels + self.position_encoding.num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, H, W, C) (or (B, T, C, H, W)) -> (B, (T/t)*(H/h)*(W/w), t*h*w*C + P)."""
        x = self.patches(x)  # (B, M, t*h*w*C)
        pos = self.position_encoding(x.shape[0])  # (B, M, P)
        return torch.cat([x, pos.to(x.dtype)], dim=-1)  # (B, M, t*h*w*C + P)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, H, W, C) (or (B, T, C, H, W)) -> the patches' pixels (B, M, t*h*w*C),
        ``forward``'s channels before the position encoding."""
        frames, height, width, channels = self.video_shape
        expected = (frames, channels, height, width) if self.channels_first else self.video_shape
        if tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"expected clips of shape (B, {', '.join(map(str, expected))}), "
                f"got {tuple(x.shape)}"
            )
        if self.channels_first:
            x = rearrange(x, "b t c h w -> b t h w c")
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        elif not x.is_floating_point():
            raise ValueError(f"expected uint8 or floating-point video, got dtype {x.dtype}")
        if self.mean is not None and self.std is not None:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)  # (B, T, H, W, C)
        t, h, w = self.patch_shape
        return rearrange(
            x, "b (nt t) (nh h) (nw w) c -> b (nt nh nw) (t h w c)", t=t, h=h, w=w
        )  # (B, M, t*h*w*C)
