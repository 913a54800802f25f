"""Attention building blocks of Perceiver and Perceiver IO.

Every attention goes through ``torch.nn.functional.scaled_dot_product_attention``, so no
(N x M) score tensor is materialised by this code: PyTorch picks the fused kernel (flash or
memory-efficient on GPU, a fused C++ kernel on CPU).

Shapes: B batch, N query positions, M key/value positions, C channels, H heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


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

    def forward(
        self, x_q: torch.Tensor, x_kv: torch.Tensor, pad_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x_q: (B, N, Cq), x_kv: (B, M, Ckv), pad_mask: (B, M) True where padded -> (B, N, Co)."""
        q = rearrange(self.q_proj(x_q), "b n (h c) -> b h n c", h=self.num_heads)
        k = rearrange(self.k_proj(x_kv), "b m (h c) -> b h m c", h=self.num_heads)
        v = rearrange(self.v_proj(x_kv), "b m (h c) -> b h m c", h=self.num_heads)
        attn_mask = None
        if pad_mask is not None:
            attn_mask = ~pad_mask[:, None, None, :]  # (B, 1, 1, M), True = attend
        o = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, N, Cv/H)
        return self.o_proj(rearrange(o, "b h n c -> b n (h c)"))


class MLP(nn.Sequential):
    """Pre-LayerNorm two-layer MLP: (B, N, C) -> (B, N, C)."""

    def __init__(self, num_channels: int, widening_factor: int = 1, dropout: float = 0.0) -> None:
        super().__init__(
            nn.LayerNorm(num_channels),
            nn.Linear(num_channels, widening_factor * num_channels),
            nn.GELU(),
            nn.Linear(widening_factor * num_channels, num_channels),
            nn.Dropout(dropout),
        )


class CrossAttentionLayer(nn.Module):
    """Queries attend to a key/value array, then an MLP; both with residual connections.

    ``query_residual=False`` drops the residual around the attention, as Perceiver IO's
    decoders do when the query carries no information worth keeping.
    """

    def __init__(
        self,
        num_heads: int,
        num_q_input_channels: int,
        num_kv_input_channels: int,
        num_qk_channels: int | None = None,
        num_v_channels: int | None = None,
        widening_factor: int = 1,
        dropout: float = 0.0,
        query_residual: bool = True,
    ) -> None:
        super().__init__()
        self.q_norm = nn.LayerNorm(num_q_input_channels)
        self.kv_norm = nn.LayerNorm(num_kv_input_channels)
        self.attention = MultiHeadAttention(
            num_heads=num_heads,
            num_q_input_channels=num_q_input_channels,
            num_kv_input_channels=num_kv_input_channels,
            num_qk_channels=num_qk_channels,
            num_v_channels=num_v_channels,
            dropout=dropout,
        )
        self.query_residual = query_residual
        self.mlp = MLP(num_q_input_channels, widening_factor, dropout)

    def forward(
        self, x_q: torch.Tensor, x_kv: torch.Tensor, pad_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x_q: (B, N, Cq), x_kv: (B, M, Ckv) -> (B, N, Cq)."""
        attended = self.attention(self.q_norm(x_q), self.kv_norm(x_kv), pad_mask)
        x = x_q + attended if self.query_residual else attended
        return x + self.mlp(x)


class SelfAttentionLayer(nn.Module):
    """Pre-LayerNorm self-attention then MLP, each with a residual: (B, N, C) -> (B, N, C)."""

    def __init__(
        self,
        num_heads: int,
        num_channels: int,
        num_qk_channels: int | None = None,
        num_v_channels: int | None = None,
        widening_factor: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(num_channels)
        self.attention = MultiHeadAttention(
            num_heads=num_heads,
            num_q_input_channels=num_channels,
            num_kv_input_channels=num_channels,
            num_qk_channels=num_qk_channels,
            num_v_channels=num_v_channels,
            dropout=dropout,
        )
        self.mlp = MLP(num_channels, widening_factor, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.norm(x)
        x = x + self.attention(normed, normed)
        return x + self.mlp(x)


class SelfAttentionBlock(nn.Sequential):
    """``num_layers`` self-attention layers applied in sequence: (B, N, C) -> (B, N, C)."""

    def __init__(
        self,
        num_layers: int,
        num_heads: int,
        num_channels: int,
        num_qk_channels: int | None = None,
        num_v_channels: int | None = None,
        widening_factor: int = 1,
        dropout: float = 0.0,
    ) -> None:
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        super().__init__(
            *[
                SelfAttentionLayer(
                    num_heads=num_heads,
                    num_channels=num_channels,
                    num_qk_channels=num_qk_channels,
                    num_v_channels=num_v_channels,
                    widening_factor=widening_factor,
                    dropout=dropout,
                )
                for _ in range(num_layers)
            ]
        )
