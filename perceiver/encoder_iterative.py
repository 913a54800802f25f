"""The original Perceiver encoder: repeated cross-attends interleaved with latent blocks.

Perceiver (Jaegle et al., 2021) lets the latent array attend to the inputs several times:

    latents -> cross-attend -> latent block -> cross-attend -> latent block -> ...

``num_cross_attends`` cross-attends are made, each followed by
``num_self_attention_blocks_per_cross_attend`` applications of the latent self-attention
block. As in the paper's ImageNet models, the first cross-attend has its own weights, all
later cross-attends share one set of weights, and every latent block shares one set of
weights. So parameters stop growing after the second cross-attend: depth costs compute only.

Because the later cross-attends share weights and see the same inputs, their keys/values
are projected once and reused, which saves O(M * C) work per extra cross-attend. With
``kv_chunk_size`` (fewer than M) every cross-attend instead projects and attends to the
inputs chunk by chunk (``CrossAttentionLayer``), so the (B, H, M, C) keys/values never exist
whole: memory stays bounded, at the cost of projecting again per cross-attend.
"""

from __future__ import annotations

import torch
from torch import nn

from perceiver.adapters.base import InputAdapter
from perceiver.attention import CrossAttentionLayer, SelfAttentionBlock, attention_mask
from perceiver.checkpointing import maybe_checkpoint


class IterativePerceiverEncoder(nn.Module):
    """``input_adapter`` output (B, M, C_in) -> latents (B, L, C_latent).

    ``activation_checkpointing=True`` recomputes each cross-attend and each latent layer in
    backward (training only); outputs and gradients are unchanged.
    """

    def __init__(
        self,
        input_adapter: InputAdapter,
        num_latents: int,
        num_latent_channels: int,
        num_cross_attends: int = 1,
        num_self_attention_blocks_per_cross_attend: int = 1,
        num_cross_attention_heads: int = 1,
        num_self_attention_heads: int = 4,
        num_self_attention_layers_per_block: int = 2,
        cross_attention_widening_factor: int = 1,
        self_attention_widening_factor: int = 1,
        num_cross_attention_qk_channels: int | None = None,
        num_cross_attention_v_channels: int | None = None,
        dropout: float = 0.0,
        activation_checkpointing: bool = False,
        kv_chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if num_cross_attends < 1:
            raise ValueError(f"num_cross_attends must be >= 1, got {num_cross_attends}")
        if num_self_attention_blocks_per_cross_attend < 1:
            raise ValueError(
                "num_self_attention_blocks_per_cross_attend must be >= 1, "
                f"got {num_self_attention_blocks_per_cross_attend}"
            )
        self.input_adapter = input_adapter
        self.num_cross_attends = num_cross_attends
        self.num_self_attention_blocks_per_cross_attend = num_self_attention_blocks_per_cross_attend
        self.activation_checkpointing = activation_checkpointing
        self.latents = nn.Parameter(torch.empty(num_latents, num_latent_channels))
        nn.init.trunc_normal_(self.latents, std=0.02, a=-0.04, b=0.04)

        def cross_attention_layer() -> CrossAttentionLayer:
            return CrossAttentionLayer(
                num_heads=num_cross_attention_heads,
                num_q_input_channels=num_latent_channels,
                num_kv_input_channels=input_adapter.num_input_channels,
                num_qk_channels=num_cross_attention_qk_channels,
                num_v_channels=num_cross_attention_v_channels,
                widening_factor=cross_attention_widening_factor,
                dropout=dropout,
                kv_chunk_size=kv_chunk_size,
            )

        self.cross_attention = cross_attention_layer()  # the first cross-attend
        # One layer for cross-attends 2..n, shared between them (absent when n == 1).
        self.shared_cross_attention = cross_attention_layer() if num_cross_attends > 1 else None
        self.self_attention = SelfAttentionBlock(
            num_layers=num_self_attention_layers_per_block,
            num_heads=num_self_attention_heads,
            num_channels=num_latent_channels,
            widening_factor=self_attention_widening_factor,
            dropout=dropout,
        )

    def _latent_blocks(self, latents: torch.Tensor, checkpointed: bool) -> torch.Tensor:
        """(B, L, C) -> (B, L, C) through the weight-shared latent block(s)."""
        for _ in range(self.num_self_attention_blocks_per_cross_attend):
            for layer in self.self_attention:
                latents = maybe_checkpoint(layer, latents, enabled=checkpointed)
        return latents

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: the adapter's raw input, pad_mask: (B, M) True where padded -> (B, L, C)."""
        checkpointed = self.activation_checkpointing and self.training
        inputs = self.input_adapter(x)  # (B, M, C_in)
        latents = self.latents.unsqueeze(0).expand(inputs.shape[0], -1, -1)  # (B, L, C)
        latents = maybe_checkpoint(
            self.cross_attention, latents, inputs, pad_mask, enabled=checkpointed
        )  # (B, L, C)
        latents = self._latent_blocks(latents, checkpointed)
        shared = self.shared_cross_attention
        if shared is None:
            return latents
        if shared.chunks_inputs(inputs.shape[1]):
            # Keys/values are projected chunk by chunk inside each cross-attend.
            for _ in range(self.num_cross_attends - 1):
                latents = maybe_checkpoint(
                    shared, latents, inputs, pad_mask, enabled=checkpointed
                )  # (B, L, C)
                latents = self._latent_blocks(latents, checkpointed)
            return latents
        # Same weights, same inputs: project keys/values once for all later cross-attends.
        k, v = maybe_checkpoint(shared.project_kv, inputs, enabled=checkpointed)  # (B, H, M, c)
        attn_mask = attention_mask(pad_mask)  # (B, 1, 1, M) or None
        for _ in range(self.num_cross_attends - 1):
            latents = maybe_checkpoint(
                shared.attend, latents, k, v, attn_mask, enabled=checkpointed
            )  # (B, L, C)
            latents = self._latent_blocks(latents, checkpointed)
        return latents
