"""Image input adapter: pixels with 2D Fourier position features concatenated.

``ImageAdapterBase`` holds what every image adapter shares (shape check and ImageNet
normalisation); the pixel adapter here and the variants in ``image_variants`` build on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange

from perceiver.adapters.base import InputAdapter
from perceiver.position import FourierPositionEncoding

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageAdapterBase(InputAdapter):
    """Checks (B, H, W, C) inputs and normalises them; subclasses turn them into positions.

    A ``uint8`` image is scaled to [0, 1]; a floating-point image is taken to be in [0, 1]
    already. Either is then normalised with the ImageNet mean and standard deviation, so the
    model accepts the arrays written by ``preprocessing`` as they are.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        image_shape: Sequence[int],
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (H, W, C), got {tuple(image_shape)}")
        height, width, channels = image_shape
        if min(height, width, channels) < 1:
            raise ValueError(f"image_shape must be positive, got {tuple(image_shape)}")
        if len(mean) != channels or len(std) != channels:
            raise ValueError(
                f"mean {tuple(mean)} and std {tuple(std)} need one entry per channel ({channels})"
            )
        self.image_shape = (height, width, channels)
        self.register_buffer("mean", torch.tensor(mean), persistent=False)
        self.register_buffer("std", torch.tensor(std), persistent=False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) uint8 or [0, 1] float -> (B, H, W, C) normalised float."""
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"expected images of shape (B, {', '.join(map(str, self.image_shape))}), "
                f"got {tuple(x.shape)}"
            )
        if x.dtype == torch.uint8:
            x = x.to(self.mean.dtype) / 255.0
        return (x.to(self.mean.dtype) - self.mean) / self.std  # (B, H, W, C)


class ImageInputAdapter(ImageAdapterBase):
    """(B, H, W, C) image -> (B, H*W, C + Fourier channels): every pixel is an input position.

    This is the ``preprocessing="pixels"`` variant of the image classifier.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        num_frequency_bands: int,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__(image_shape, mean, std)
        height, width, channels = self.image_shape
        self.position_encoding = FourierPositionEncoding((height, width), num_frequency_bands)
        self.num_input_channels = channels + self.position_encoding.num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> (B, H*W, C + P)."""
        x = self.normalize(x)  # (B, H, W, C)
        x = rearrange(x, "b h w c -> b (h w) c")  # (B, M, C)
        pos = self.position_encoding(x.shape[0])  # (B, M, P)
        return torch.cat([x, pos.to(x.dtype)], dim=-1)  # (B, M, C + P)
