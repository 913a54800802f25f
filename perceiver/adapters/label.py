"""Label input adapter: a class vector becomes one input position (Perceiver IO multimodal).

Perceiver IO's Kinetics autoencoder feeds the class label as a modality of its own: a
(B, num_classes) one-hot (or all-zero, or soft) vector is a single input position with
``num_classes`` channels and no position encoding. In training the label is usually replaced
by a mask token (``MultimodalInputAdapter``), so the model learns to predict it.
"""

from __future__ import annotations

import torch

from perceiver.modules.inputs import InputAdapter


class LabelInputAdapter(InputAdapter):
    """(B, num_classes) float label vectors, or (B,) integer class indices (one-hot
    encoded here, as datasets store labels) -> (B, 1, num_classes)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.num_input_channels = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, K) or (B,) class indices -> (B, 1, K)."""
        if x.dim() == 1 and not x.is_floating_point():
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.num_classes):
                raise ValueError(
                    f"class indices must lie in [0, {self.num_classes}), got values from "
                    f"{int(x.min())} to {int(x.max())}"
                )
            x = torch.nn.functional.one_hot(x.long(), self.num_classes).float()  # (B, K)
        if x.dim() != 2 or x.shape[1] != self.num_classes:
            raise ValueError(
                f"expected label vectors of shape (B, {self.num_classes}) or (B,) class indices, "
                f"got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"expected floating-point label vectors, got dtype {x.dtype}")
        return x.unsqueeze(1)  # (B, 1, K)
