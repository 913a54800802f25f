"""Point-cloud input adapter: xyz coordinates with Fourier features of those coordinates.

As in the Perceiver paper's ModelNet40 model, a point cloud is a set of N input positions;
each point's features are its coordinates followed by ``sin``/``cos`` of the coordinates at
``num_frequency_bands`` frequencies per axis, spaced linearly from 1 to
``max_resolution / 2`` (``perceiver.modules.position.fourier_features`` applied to the points
themselves rather than to a grid index). Points carry no index position, so the encoder is
invariant to their order.
"""

from __future__ import annotations

import torch

from perceiver.modules.inputs import InputAdapter
from perceiver.modules.position import fourier_features, num_fourier_channels


class PointCloudInputAdapter(InputAdapter):
    """(B, N, D) points, coordinates roughly in [-1, 1] -> (B, N, D + 2 * D * num_bands).

    ``max_resolution`` is one number for every axis (or one per axis).
    """

    def __init__(
        self,
        num_frequency_bands: int,
        max_resolution: int | tuple[int, ...],
        num_dims: int = 3,
    ) -> None:
        super().__init__()
        if num_frequency_bands < 1:
            raise ValueError(f"num_frequency_bands must be >= 1, got {num_frequency_bands}")
        if num_dims < 1:
            raise ValueError(f"num_dims must be >= 1, got {num_dims}")
        resolution = (
            (max_resolution,) * num_dims if isinstance(max_resolution, int) else max_resolution
        )
        if len(resolution) != num_dims or min(resolution) < 1:
            raise ValueError(
                f"max_resolution={max_resolution!r} must be >= 1, one value or one per axis "
                f"({num_dims})"
            )
        self.num_dims = num_dims
        self.num_frequency_bands = num_frequency_bands
        self.max_resolution = tuple(resolution)
        self.num_input_channels = num_fourier_channels(num_dims, num_frequency_bands)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, N, D) -> (B, N, D + 2 * D * F)."""
        if x.dim() != 3 or x.shape[-1] != self.num_dims:
            raise ValueError(
                f"expected points of shape (B, N, {self.num_dims}), got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"expected floating-point points, got dtype {x.dtype}")
        batch, num_points, _ = x.shape
        features = fourier_features(
            x.reshape(batch * num_points, self.num_dims),
            self.num_frequency_bands,
            self.max_resolution,
        )  # (B*N, D + 2*D*F): [xyz, sin, cos]
        return features.reshape(batch, num_points, -1)  # (B, N, C)
