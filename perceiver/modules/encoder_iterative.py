"""The original Perceiver encoder: repeated cross-attends interleaved with latent blocks.

Perceiver (Jaegle et al., 2021) lets the latent array attend to the inputs several times:

    latents -> cross-attend -> latent block -> cross-attend -> latent block -> ...

``num_cross_attends`` cross-attends are made, each followed by
``num_self_attention_blocks_per_cross_attend`` applications of the latent self-attention
block. As in the paper's ImageNet models, the first cross-attend has its own weights, all
later cross-attends share one set of weights, and every latent block shares one set of
weights. So parameters stop growing after the second cross-attend: depth costs compute only.
The layers are given (``cross_attention`` for the first cross-attend, ``shared_cross_attention``
for the others, ``self_attention`` for the latent block); the encoder owns the latent array.

Because the later cross-attends share weights and see the same inputs, their keys/values
are projected once and reused, which saves O(M * C) work per extra cross-attend. With
``kv_chunk_size`` (fewer than M) every cross-attend instead projects and attends to the
inputs chunk by chunk (``CrossAttentionLayer``), so the (B, H, M, C) keys/values never exist
whole: memory stays bounded, at the cost of projecting again per cross-attend.
"""

from __future__ import annotations

import torch
from torch import nn

from perceiver.modules.attention import CrossAttentionLayer, SelfAttentionBlock, attention_mask
from perceiver.modules.checkpointing import maybe_checkpoint
from perceiver.modules.encoder import check_widths, init_latents
from perceiver.modules.inputs import InputAdapter


class IterativePerceiverEncoder(nn.Module):
    """``input_adapter`` output (B, M, C_in) -> latents (B, L, C_latent).

    ``activation_checkpointing=True`` recomputes each cross-attend and each latent layer in
    backward (training only); outputs and gradients are unchanged.
    """

    def __init__(
        self,
        input_adapter: InputAdapter,
        cross_attention: CrossAttentionLayer,
        self_attention: SelfAttentionBlock,
        num_latents: int,
        shared_cross_attention: CrossAttentionLayer | None = None,
        num_cross_attends: int = 1,
        num_self_attention_blocks_per_cross_attend: int = 1,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if num_cross_attends < 1:
            raise ValueError(f"num_cross_attends must be >= 1, got {num_cross_attends}")
        if num_self_attention_blocks_per_cross_attend < 1:
            raise ValueError(
                "num_self_attention_blocks_per_cross_attend must be >= 1, "
                f"got {num_self_attention_blocks_per_cross_attend}"
            )
        if (shared_cross_attention is None) != (num_cross_attends == 1):
            raise ValueError(
                f"num_cross_attends={num_cross_attends}: give a shared_cross_attention for "
                "cross-attends 2..n exactly when there is more than one"
            )
        width = cross_attention.num_q_channels
        for layer in (cross_attention, shared_cross_attention):
            if layer is not None:
                check_widths(input_adapter, layer, width)
        self.input_adapter = input_adapter
        self.num_cross_attends = num_cross_attends
        self.num_self_attention_blocks_per_cross_attend = num_self_attention_blocks_per_cross_attend
        self.activation_checkpointing = activation_checkpointing
        self.latents = init_latents(num_latents, width)
        self.cross_attention = cross_attention  # the first cross-attend
        # One layer for cross-attends 2..n, shared between them (absent when n == 1).
        self.shared_cross_attention = shared_cross_attention
        self.self_attention = self_attention

    def _latent_blocks(self, latents: torch.Tensor, checkpointed: bool) -> torch.Tensor:
        """(B, L, C) -> (B, L, C) through the weight-shared latent block(s)."""
        for _ in range(self.num_self_attention_blocks_per_cross_attend):
            for layer in self.self_attention:
                latents = maybe_checkpoint(layer, latents, enabled=checkpointed)
        return latents

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: the adapter's raw input, pad_mask: (B, M) True where padded -> (B, L, C)."""
        checkpointed = self.activation_checkpointing and self.training
        inputs = self.input_adapter(x).to(self.latents.dtype)  # (B, M, C_in)
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
