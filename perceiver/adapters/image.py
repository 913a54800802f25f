"""Image input adapter: pixels with 2D Fourier position features concatenated.

``ImageAdapterBase`` holds what every image adapter shares (shape check, layout and
normalisation, the position encoding of the position grid); the pixel adapter here and the
variants in ``image_variants`` build on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from einops import rearrange

from perceiver.modules.inputs import InputAdapter, SharedPositionInputs
from perceiver.modules.position import FourierPositionEncoding, PositionEncoding

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def grid_position_encoding(
    grid_shape: Sequence[int],
    num_frequency_bands: int | None,
    max_resolution: Sequence[int] | None = None,
    position_encoding: PositionEncoding | None = None,
) -> PositionEncoding:
    """The position encoding of an adapter's position grid.

    Either Fourier features of ``grid_shape`` with ``num_frequency_bands`` bands (frequencies
    up to ``max_resolution / 2``, default the grid itself), or an injected ``position_encoding``
    with one position per grid cell; exactly one of the two must be given.
    """
    if position_encoding is None:
        if num_frequency_bands is None:
            raise ValueError("give num_frequency_bands or a position_encoding, got neither")
        return FourierPositionEncoding(grid_shape, num_frequency_bands, max_resolution)
    if num_frequency_bands is not None or max_resolution is not None:
        raise ValueError(
            f"num_frequency_bands={num_frequency_bands} and max_resolution={max_resolution} "
            "configure Fourier features; leave them None with an injected position_encoding"
        )
    if position_encoding.num_positions != math.prod(grid_shape):
        raise ValueError(
            f"position_encoding has {position_encoding.num_positions} positions, the position "
            f"grid {tuple(grid_shape)} has {math.prod(grid_shape)}"
        )
    return position_encoding


class ImageAdapterBase(InputAdapter):
    """Checks (B, H, W, C) inputs and normalises them; subclasses turn them into positions.

    A ``uint8`` image is scaled to [0, 1]; a floating-point image is taken to be in [0, 1]
    already. Either is then normalised with the ImageNet mean and standard deviation, so the
    model accepts the arrays written by ``preprocessing`` as they are. ``mean=None`` and
    ``std=None`` skip the normalisation (floating-point images are used as they are).
    ``channels_first=True`` takes (B, C, H, W) images instead; ``image_shape`` is (H, W, C)
    either way.
    """

    mean: torch.Tensor | None
    std: torch.Tensor | None

    def __init__(
        self,
        image_shape: Sequence[int],
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
        channels_first: bool = False,
    ) -> None:
        super().__init__()
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (H, W, C), got {tuple(image_shape)}")
        height, width, channels = image_shape
        if min(height, width, channels) < 1:
            raise ValueError(f"image_shape must be positive, got {tuple(image_shape)}")
        if (mean is None) != (std is None):
            raise ValueError(f"give both mean and std or neither, got mean={mean}, std={std}")
        if mean is not None and std is not None and (len(mean) != channels or len(std) != channels):
            raise ValueError(
                f"mean {tuple(mean)} and std {tuple(std)} need one entry per channel ({channels})"
            )
        self.image_shape = (height, width, channels)
        self.channels_first = channels_first
        self.register_buffer("mean", None if mean is None else torch.tensor(mean), persistent=False)
        self.register_buffer("std", None if std is None else torch.tensor(std), persistent=False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) (or (B, C, H, W) if channels-first) -> (B, H, W, C) normalised float."""
        height, width, channels = self.image_shape
        expected = (channels, height, width) if self.channels_first else self.image_shape
        if tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"expected images of shape (B, {', '.join(map(str, expected))}), "
                f"got {tuple(x.shape)}"
            )
        if self.channels_first:
            x = rearrange(x, "b c h w -> b h w c")
        if self.mean is None or self.std is None:
            if x.dtype == torch.uint8:
                return x.float() / 255.0
            if not x.is_floating_point():
                raise ValueError(f"expected uint8 or floating-point images, got dtype {x.dtype}")
            return x  # (B, H, W, C)
        if x.dtype == torch.uint8:
            x = x.to(self.mean.dtype) / 255.0
        return (x.to(self.mean.dtype) - self.mean) / self.std  # (B, H, W, C)


class ImageInputAdapter(ImageAdapterBase):
    """(B, H, W, C) image -> (B, H*W, C + position channels): every pixel is an input position.

    This is the ``preprocessing="pixels"`` variant of the image classifier. The position
    encoding is 2D Fourier features over (H, W) (``max_resolution`` sets the highest band,
    default (H, W)) unless a ``position_encoding`` of H*W positions is injected.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        num_frequency_bands: int | None,
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
        channels_first: bool = False,
        max_resolution: Sequence[int] | None = None,
        position_encoding: PositionEncoding | None = None,
    ) -> None:
        super().__init__(image_shape, mean, std, channels_first)
        height, width, channels = self.image_shape
        self.position_encoding = grid_position_encoding(
            (height, width), num_frequency_bands, max_resolution, position_encoding
        )
        self.num_input_channels = channels + self.position_encoding.num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> (B, H*W, C + P)."""
        return self.forward_shared(x).materialize()  # (B, M, C + P)

    def forward_shared(self, x: torch.Tensor) -> SharedPositionInputs:
        """x: (B, H, W, C) -> pixels (B, H*W, C) and the batch-shared positions (H*W, P)."""
        x = self.normalize(x)  # (B, H, W, C)
        x = rearrange(x, "b h w c -> b (h w) c")  # (B, M, C)
        pos = self.position_encoding(1)[0]  # (M, P), the same for every sample
        return SharedPositionInputs(x, pos.to(x.dtype))
