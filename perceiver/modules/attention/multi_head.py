"""Multi-head attention and the MLP, the two parts of every Perceiver layer.

Attention goes through ``torch.nn.functional.scaled_dot_product_attention``, so no
(N x M) score tensor is materialised by this code: PyTorch picks the fused kernel (flash or
memory-efficient on GPU, a fused C++ kernel on CPU).

Shapes: B batch, N query positions, M key/value positions, C channels, H heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def attention_mask(pad_mask: torch.Tensor | None) -> torch.Tensor | None:
    """pad_mask: (B, M), True where padded -> SDPA boolean mask (B, 1, 1, M), True = attend."""
    if pad_mask is None:
        return None
    return ~pad_mask[:, None, None, :]


def validate_chunk_size(chunk_size: int | None, name: str = "chunk_size") -> int | None:
    """``None`` (no chunking) or a positive int; anything else is a ValueError naming ``name``."""
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"{name} must be None or >= 1, got {chunk_size!r}")
    return chunk_size


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, M, H * c) -> (B, H, M, c)."""
    return rearrange(x, "b m (h c) -> b h m c", h=num_heads)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate query/key and value channel counts.

    ``num_qk_channels`` and ``num_v_channels`` default to the query input width, as in the
    Perceiver IO paper; both must be divisible by ``num_heads``.
    """

    def __init__(
        self,
        num_heads: int,
        num_q_input_channels: int,
        num_kv_input_channels: int,
        num_qk_channels: int | None = None,
        num_v_channels: int | None = None,
        num_output_channels: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        num_qk_channels = num_qk_channels or num_q_input_channels
        num_v_channels = num_v_channels or num_qk_channels
        num_output_channels = num_output_channels or num_q_input_channels
        if num_qk_channels % num_heads != 0:
            raise ValueError(
                f"num_qk_channels={num_qk_channels} must be divisible by num_heads={num_heads}"
            )
        if num_v_channels % num_heads != 0:
            raise ValueError(
                f"num_v_channels={num_v_channels} must be divisible by num_heads={num_heads}"
            )
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(num_q_input_channels, num_qk_channels)
        self.k_proj = nn.Linear(num_kv_input_channels, num_qk_channels)
        self.v_proj = nn.Linear(num_kv_input_channels, num_v_channels)
        self.o_proj = nn.Linear(num_v_channels, num_output_channels)

    @property
    def num_q_input_channels(self) -> int:
        return self.q_proj.in_features

    @property
    def num_kv_input_channels(self) -> int:
        return self.k_proj.in_features

    def forward(
        self, x_q: torch.Tensor, x_kv: torch.Tensor, pad_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x_q: (B, N, Cq), x_kv: (B, M, Ckv), pad_mask: (B, M) True where padded -> (B, N, Co)."""
        k, v = self.project_kv(x_kv)
        return self.attend(x_q, k, v, attention_mask(pad_mask))

    def project_kv(self, x_kv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_kv: (B, M, Ckv) -> keys (B, H, M, Cqk/H) and values (B, H, M, Cv/H).

        Split from ``attend`` so callers can project the keys/values once and reuse them for
        several query chunks (or several applications of a weight-shared layer).
        """
        return split_heads(self.k_proj(x_kv), self.num_heads), split_heads(
            self.v_proj(x_kv), self.num_heads
        )

    def attend(
        self,
        x_q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x_q: (B, N, Cq), k/v from ``project_kv``, attn_mask: (B, 1, 1, M) -> (B, N, Co)."""
        q = split_heads(self.q_proj(x_q), self.num_heads)  # (B, H, N, Cqk/H)
        o = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, N, Cv/H)
        return self.o_proj(rearrange(o, "b h n c -> b n (h c)"))


class MLP(nn.Sequential):
    """Pre-LayerNorm two-layer MLP: (B, N, C) -> (B, N, C)."""

    def __init__(self, num_channels: int, widening_factor: int = 1, dropout: float = 0.0) -> None:
        if num_channels < 1 or widening_factor < 1:
            raise ValueError(
                f"num_channels={num_channels} and widening_factor={widening_factor} must be >= 1"
            )
        super().__init__(
            nn.LayerNorm(num_channels),
            nn.Linear(num_channels, widening_factor * num_channels),
            nn.GELU(),
            nn.Linear(widening_factor * num_channels, num_channels),
            nn.Dropout(dropout),
        )
        self.num_channels = num_channels
