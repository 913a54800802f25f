"""Image preprocessing variants of the Perceiver IO paper (ImageNet ablations).

Each turns a (B, H, W, C) image into fewer or wider input positions than raw pixels, then
concatenates 2D Fourier features of the resulting position grid:

- ``conv1x1``: a learned 1x1 convolution to ``num_output_channels`` (256) per pixel;
- ``patches``: space-to-depth of non-overlapping p x p patches, (H/p)*(W/p) positions of
  p*p*C channels, optionally followed by a learned linear projection;
- ``conv``: conv 7x7 stride 2 (+ BatchNorm + ReLU) then max-pool 3x3 stride 2, the paper's
  ``conv`` variant: a 224x224 image becomes a 56x56 grid of 64-channel positions.

All three normalise the image exactly as ``ImageInputAdapter`` does and take the same
``channels_first``, ``max_resolution`` and ``position_encoding`` options (see
``ImageAdapterBase`` and ``grid_position_encoding``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import nn

from perceiver.adapters.image import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageAdapterBase,
    grid_position_encoding,
)
from perceiver.modules.position import PositionEncoding


class Conv1x1ImageInputAdapter(ImageAdapterBase):
    """(B, H, W, C) -> (B, H*W, num_output_channels + Fourier channels).

    The 1x1 convolution is a per-pixel linear map of the channels, applied as ``nn.Linear``
    on the channels-last image (the same function, without layout changes).
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        num_frequency_bands: int | None,
        num_output_channels: int = 256,
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
        channels_first: bool = False,
        max_resolution: Sequence[int] | None = None,
        position_encoding: PositionEncoding | None = None,
    ) -> None:
        super().__init__(image_shape, mean, std, channels_first)
        if num_output_channels < 1:
            raise ValueError(f"num_output_channels must be >= 1, got {num_output_channels}")
        height, width, channels = self.image_shape
        self.conv1x1 = nn.Linear(channels, num_output_channels)
        self.position_encoding = grid_position_encoding(
            (height, width), num_frequency_bands, max_resolution, position_encoding
        )
        self.num_input_channels = num_output_channels + self.position_encoding.num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> (B, H*W, C_out + P)."""
        x = self.normalize(x)  # (B, H, W, C)
        x = self.conv1x1(rearrange(x, "b h w c -> b (h w) c"))  # (B, M, C_out)
        pos = self.position_encoding(x.shape[0])  # (B, M, P)
        return torch.cat([x, pos.to(x.dtype)], dim=-1)  # (B, M, C_out + P)


class PatchImageInputAdapter(ImageAdapterBase):
    """(B, H, W, C) -> (B, (H/p)*(W/p), p*p*C or num_output_channels, + Fourier channels).

    Space-to-depth: each non-overlapping p x p patch becomes one position whose channels are
    the patch's pixels in (row, column, channel) order. Fourier features are over the patch
    grid (H/p, W/p). ``num_output_channels`` adds a learned linear projection of the patches.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        patch_size: int,
        num_frequency_bands: int | None,
        num_output_channels: int | None = None,
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
        channels_first: bool = False,
        max_resolution: Sequence[int] | None = None,
        position_encoding: PositionEncoding | None = None,
    ) -> None:
        super().__init__(image_shape, mean, std, channels_first)
        height, width, channels = self.image_shape
        if patch_size < 1 or height % patch_size or width % patch_size:
            raise ValueError(
                f"patch_size={patch_size} must be >= 1 and divide the image height {height} "
                f"and width {width}"
            )
        if num_output_channels is not None and num_output_channels < 1:
            raise ValueError(f"num_output_channels must be >= 1, got {num_output_channels}")
        self.patch_size = patch_size
        self.grid_shape = (height // patch_size, width // patch_size)
        patch_channels = patch_size * patch_size * channels
        self.projection = (
            nn.Linear(patch_channels, num_output_channels) if num_output_channels else None
        )
        self.position_encoding = grid_position_encoding(
            self.grid_shape, num_frequency_bands, max_resolution, position_encoding
        )
        self.num_input_channels = (
            num_output_channels or patch_channels
        ) + self.position_encoding.num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> (B, (H/p)*(W/p), p*p*C or C_out, + P)."""
        x = self.normalize(x)  # (B, H, W, C)
        p = self.patch_size
        x = rearrange(x, "b (h p1) (w p2) c -> b (h w) (p1 p2 c)", p1=p, p2=p)  # (B, M, p*p*C)
        if self.projection is not None:
            x = self.projection(x)  # (B, M, C_out)
        pos = self.position_encoding(x.shape[0])  # (B, M, P)
        return torch.cat([x, pos.to(x.dtype)], dim=-1)


def _downsampled(size: int, kernel: int, padding: int) -> int:
    """Output length of a stride-2 conv or pool; ceil(size/2) for conv 7/3 and pool 3/1."""
    return (size + 2 * padding - kernel) // 2 + 1


class ConvImageInputAdapter(ImageAdapterBase):
    """(B, H, W, C) -> (B, ceil(H/4)*ceil(W/4), num_output_channels + Fourier channels).

    Conv 7x7 stride 2 padding 3 -> BatchNorm -> ReLU -> max-pool 3x3 stride 2 padding 1, as
    in Perceiver IO's ``conv`` preprocessing. Output sizes equal TensorFlow's 'same' padding
    (ceil(size / 2) per stage); the padding is symmetric, as in the torchvision ResNet stem,
    where TensorFlow pads one more pixel at the end. Fourier features are over the
    downsampled grid.
    ``use_batchnorm=False`` gives the conv a bias instead of a BatchNorm, which keeps every
    image's output independent of the rest of the batch in training too. ``pool_padding=0``
    pools without padding, as Hugging Face's ``Conv2DDownsample`` does (a 32x32 image gives
    a 7x7 grid instead of 8x8).
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        num_frequency_bands: int | None,
        num_output_channels: int = 64,
        use_batchnorm: bool = True,
        pool_padding: int = 1,
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
        channels_first: bool = False,
        max_resolution: Sequence[int] | None = None,
        position_encoding: PositionEncoding | None = None,
    ) -> None:
        super().__init__(image_shape, mean, std, channels_first)
        if num_output_channels < 1:
            raise ValueError(f"num_output_channels must be >= 1, got {num_output_channels}")
        if pool_padding not in (0, 1):
            raise ValueError(f"pool_padding must be 0 or 1, got {pool_padding}")
        height, width, channels = self.image_shape
        self.conv = nn.Conv2d(
            channels, num_output_channels, 7, stride=2, padding=3, bias=not use_batchnorm
        )
        self.norm = nn.BatchNorm2d(num_output_channels) if use_batchnorm else nn.Identity()
        self.activation = nn.ReLU()
        self.pool = nn.MaxPool2d(3, stride=2, padding=pool_padding)
        grid_height, grid_width = (
            _downsampled(_downsampled(size, 7, 3), 3, pool_padding) for size in (height, width)
        )
        if min(grid_height, grid_width) < 1:
            raise ValueError(
                f"image_shape={self.image_shape} is too small for conv 7x7/2 + pool 3x3/2 "
                f"with pool_padding={pool_padding}"
            )
        self.grid_shape = (grid_height, grid_width)
        self.position_encoding = grid_position_encoding(
            self.grid_shape, num_frequency_bands, max_resolution, position_encoding
        )
        self.num_input_channels = num_output_channels + self.position_encoding.num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> (B, H'*W', C_out + P); H' = ceil(H/4), W' = ceil(W/4) if padded."""
        x = rearrange(self.normalize(x), "b h w c -> b c h w")  # (B, C, H, W)
        x = self.activation(self.norm(self.conv(x)))  # (B, C_out, ceil(H/2), ceil(W/2))
        x = self.pool(x)  # (B, C_out, H', W')
        x = rearrange(x, "b c h w -> b (h w) c")  # (B, M, C_out)
        pos = self.position_encoding(x.shape[0])  # (B, M, P)
        return torch.cat([x, pos.to(x.dtype)], dim=-1)  # (B, M, C_out + P)
