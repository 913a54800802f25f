"""Classification decoder: one trainable query cross-attends to the latents."""

from __future__ import annotations

import torch
from torch import nn

from perceiver.attention import CrossAttentionLayer
from perceiver.position import TrainablePositionEncoding


class ClassificationDecoder(nn.Module):
    """Latents (B, L, C_latent) -> logits (B, num_classes)."""

    def __init__(
        self,
        num_classes: int,
        num_latent_channels: int,
        num_output_query_channels: int | None = None,
        num_cross_attention_heads: int = 1,
        cross_attention_widening_factor: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        num_query_channels = num_output_query_channels or num_latent_channels
        self.output_query = TrainablePositionEncoding(1, num_query_channels)
        self.cross_attention = CrossAttentionLayer(
            num_heads=num_cross_attention_heads,
            num_q_input_channels=num_query_channels,
            num_kv_input_channels=num_latent_channels,
            widening_factor=cross_attention_widening_factor,
            dropout=dropout,
        )
        self.head = nn.Linear(num_query_channels, num_classes)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        query = self.output_query(latents.shape[0])  # (B, 1, C_q)
        out = self.cross_attention(query, latents)  # (B, 1, C_q)
        return self.head(out).squeeze(1)  # (B, num_classes)
