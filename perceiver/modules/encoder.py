"""Perceiver IO encoder: a latent array cross-attends to the inputs, then self-attends.

The encoder is a composition: it is given its input adapter, its input cross-attention layer
and its latent self-attention block (``perceiver.builders`` builds them from an
``EncoderConfig``), and owns only the latent array. The self-attention block is applied
``num_self_attention_blocks`` times with the same weights (the papers' weight sharing across
blocks), so depth costs compute, not parameters. Cost is O(M * L) for the cross-attention over
M inputs and O(L^2) per latent layer.

``activation_checkpointing=True`` recomputes the input cross-attention layer and each latent
self-attention layer in backward instead of storing their activations (training only); the
outputs and gradients are unchanged.

A cross-attention layer built with ``kv_chunk_size`` normalises, projects and attends to the
inputs at most that many positions at a time, merging the chunks exactly: memory for the
keys/values and scores stays bounded however many inputs there are.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from perceiver.modules.attention import CrossAttentionLayer, SelfAttentionBlock
from perceiver.modules.checkpointing import maybe_checkpoint
from perceiver.modules.inputs import InputAdapter, SharedPositionInputs, cast_inputs

Inputs = torch.Tensor | SharedPositionInputs
"""An adapter's output: (B, M, C_in), or its split into per-sample and shared channels."""


def check_widths(
    input_adapter: InputAdapter, cross_attention: CrossAttentionLayer, num_latent_channels: int
) -> None:
    """ValueError unless the cross-attention reads the adapter's channels into the latents."""
    if cross_attention.num_kv_channels != input_adapter.num_input_channels:
        raise ValueError(
            f"the input cross-attention reads {cross_attention.num_kv_channels} channels, the "
            f"input adapter gives {input_adapter.num_input_channels}"
        )
    if cross_attention.num_q_channels != num_latent_channels:
        raise ValueError(
            f"the input cross-attention's queries are {cross_attention.num_q_channels} wide, "
            f"the latents {num_latent_channels}"
        )


def init_latents(num_latents: int, num_latent_channels: int) -> nn.Parameter:
    """The trainable (L, C) latent array, truncated-normal with std 0.02 (as the papers')."""
    if num_latents < 1 or num_latent_channels < 1:
        raise ValueError(
            f"num_latents={num_latents} and num_latent_channels={num_latent_channels} must be >= 1"
        )
    latents = nn.Parameter(torch.empty(num_latents, num_latent_channels))
    nn.init.trunc_normal_(latents, std=0.02, a=-0.04, b=0.04)
    return latents


class PerceiverEncoder(nn.Module):
    """``input_adapter`` output (B, M, C_in) -> latents (B, L, C_latent)."""

    def __init__(
        self,
        input_adapter: InputAdapter,
        cross_attention: CrossAttentionLayer,
        self_attention: SelfAttentionBlock,
        num_latents: int,
        num_self_attention_blocks: int = 1,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if num_self_attention_blocks < 1:
            raise ValueError(
                f"num_self_attention_blocks must be >= 1, got {num_self_attention_blocks}"
            )
        width = cross_attention.num_q_channels
        check_widths(input_adapter, cross_attention, width)
        self.input_adapter = input_adapter
        self.num_self_attention_blocks = num_self_attention_blocks
        self.activation_checkpointing = activation_checkpointing
        self.latents = init_latents(num_latents, width)
        self.cross_attention = cross_attention
        self.self_attention = self_attention

    def forward(self, x: Any, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: the adapter's raw input, pad_mask: (B, M) True where padded -> (B, L, C)."""
        return self.encode(self.adapt(x, pad_mask), pad_mask)

    def adapt(self, x: Any, pad_mask: torch.Tensor | None = None) -> Inputs:
        """x -> the adapter's output (B, M, C_in).

        Without a pad mask, an adapter with batch-shared position channels hands them over
        separately (``InputAdapter.forward_shared``), so the cross-attention need not repeat
        their work per sample (``perceiver.modules.attention.input_space``).
        """
        inputs = self.input_adapter.forward_shared(x) if pad_mask is None else None
        if inputs is None:
            inputs = self.input_adapter(x)
        return cast_inputs(inputs, self.latents.dtype)  # the model's compute dtype

    def encode(self, inputs: Inputs, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """inputs: the adapter's output (``adapt``), pad_mask: (B, M) -> latents (B, L, C)."""
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
