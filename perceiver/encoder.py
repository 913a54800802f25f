"""Perceiver IO encoder: a latent array cross-attends to the inputs, then self-attends.

The latent self-attention block is applied ``num_self_attention_blocks`` times with the same
weights (the papers' weight sharing across blocks), so depth costs compute, not parameters.
Cost is O(M * L) for the cross-attention over M inputs and O(L^2) per latent layer.

``activation_checkpointing=True`` recomputes the input cross-attention layer and each latent
self-attention layer in backward instead of storing their activations (training only); the
outputs and gradients are unchanged.

``num_self_attention_qk_channels`` / ``num_self_attention_v_channels`` set the latent layers'
query/key and value widths (default: the latent width); ``query_residual=False`` drops the
residual around the input cross-attention (Hugging Face's ``use_query_residual``).

``kv_chunk_size`` lets the input cross-attention normalise, project and attend to the inputs
at most that many positions at a time, merging the chunks exactly (``CrossAttentionLayer``):
memory for the keys/values and scores stays bounded however many inputs there are.
"""

from __future__ import annotations

import torch
from torch import nn

from perceiver.adapters.base import InputAdapter, SharedPositionInputs
from perceiver.attention import CrossAttentionLayer, SelfAttentionBlock
from perceiver.checkpointing import maybe_checkpoint


class PerceiverEncoder(nn.Module):
    """``input_adapter`` output (B, M, C_in) -> latents (B, L, C_latent)."""

    def __init__(
        self,
        input_adapter: InputAdapter,
        num_latents: int,
        num_latent_channels: int,
        num_cross_attention_heads: int = 1,
        num_self_attention_heads: int = 4,
        num_self_attention_layers_per_block: int = 2,
        num_self_attention_blocks: int = 1,
        cross_attention_widening_factor: int = 1,
        self_attention_widening_factor: int = 1,
        num_cross_attention_qk_channels: int | None = None,
        num_cross_attention_v_channels: int | None = None,
        dropout: float = 0.0,
        activation_checkpointing: bool = False,
        num_self_attention_qk_channels: int | None = None,
        num_self_attention_v_channels: int | None = None,
        query_residual: bool = True,
        kv_chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if num_self_attention_blocks < 1:
            raise ValueError(
                f"num_self_attention_blocks must be >= 1, got {num_self_attention_blocks}"
            )
        self.input_adapter = input_adapter
        self.num_self_attention_blocks = num_self_attention_blocks
        self.activation_checkpointing = activation_checkpointing
        self.latents = nn.Parameter(torch.empty(num_latents, num_latent_channels))
        nn.init.trunc_normal_(self.latents, std=0.02, a=-0.04, b=0.04)
        self.cross_attention = CrossAttentionLayer(
            num_heads=num_cross_attention_heads,
            num_q_input_channels=num_latent_channels,
            num_kv_input_channels=input_adapter.num_input_channels,
            num_qk_channels=num_cross_attention_qk_channels,
            num_v_channels=num_cross_attention_v_channels,
            widening_factor=cross_attention_widening_factor,
            dropout=dropout,
            query_residual=query_residual,
            kv_chunk_size=kv_chunk_size,
        )
        self.self_attention = SelfAttentionBlock(
            num_layers=num_self_attention_layers_per_block,
            num_heads=num_self_attention_heads,
            num_channels=num_latent_channels,
            num_qk_channels=num_self_attention_qk_channels,
            num_v_channels=num_self_attention_v_channels,
            widening_factor=self_attention_widening_factor,
            dropout=dropout,
        )

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: the adapter's raw input, pad_mask: (B, M) True where padded -> (B, L, C).

        Without a pad mask, an adapter with batch-shared position channels hands them over
        separately (``InputAdapter.forward_shared``), so the cross-attention need not repeat
        their work per sample (``perceiver.factorized``).
        """
        inputs = self.input_adapter.forward_shared(x) if pad_mask is None else None
        return self.encode(self.input_adapter(x) if inputs is None else inputs, pad_mask)

    def encode(
        self, inputs: torch.Tensor | SharedPositionInputs, pad_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """inputs: the adapter's output (B, M, C_in) (or its ``SharedPositionInputs`` split),
        pad_mask: (B, M) -> latents (B, L, C).

        For models that use the adapted inputs again (e.g. as decoder queries).
        """
        checkpointed = self.activation_checkpointing and self.training
        batch_size = (
            inputs.per_sample.shape[0]
            if isinstance(inputs, SharedPositionInputs)
            else inputs.shape[0]
        )
        latents = self.latents.unsqueeze(0).expand(batch_size, -1, -1)  # (B, L, C)
        latents = maybe_checkpoint(
            self.cross_attention, latents, inputs, pad_mask, enabled=checkpointed
        )  # (B, L, C)
        for _ in range(self.num_self_attention_blocks):  # shared weights across blocks
            for layer in self.self_attention:
                latents = maybe_checkpoint(layer, latents, enabled=checkpointed)  # (B, L, C)
        return latents
