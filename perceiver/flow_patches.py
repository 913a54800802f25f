"""Optical-flow input features: the 3x3 patch around every pixel of both frames.

Perceiver IO's optical-flow model reads, for each pixel, the 3x3 neighbourhood of that pixel
in both frames: 2 frames x 27 values = 54 channels, which ``FrameStackInputAdapter`` projects
to 64 and concatenates with 2D Fourier features. The 27 values of a frame are ordered
(kernel row, kernel column, colour channel), as DeepMind's ``extract_patches`` and the
transformers example produce them, so converted weights see the layout they were trained on.
Borders are zero-padded (TensorFlow 'SAME' padding with a 3x3 kernel and stride 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange


def extract_flow_patches(frames: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """(B, 2, H, W, C) frame pairs -> (B, 2, kernel*kernel*C, H, W) per-pixel patches."""
    if frames.ndim != 5:
        raise ValueError(f"frames must be (B, T, H, W, C), got shape {tuple(frames.shape)}")
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be a positive odd number, got {kernel}")
    b, t = frames.shape[:2]
    x = rearrange(frames.float(), "b t h w c -> (b t) c h w")
    pad = kernel // 2
    x = F.pad(x, (pad, pad, pad, pad))  # (B*T, C, H + 2p, W + 2p)
    patches = x.unfold(2, kernel, 1).unfold(3, kernel, 1)  # (B*T, C, H, W, k, k)
    patches = rearrange(patches, "bt c h w kh kw -> bt (kh kw c) h w")
    return rearrange(patches, "(b t) k h w -> b t k h w", b=b, t=t)
