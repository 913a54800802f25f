"""The Perceiver IO decoder: output queries cross-attend to the latents, a head reads them out.

There is one decoder; what varies between tasks is injected (``perceiver.builders``):

- ``output_query`` (``perceiver.decoders.queries``): which queries ask the latents, e.g. one
  trainable query for a class, a Fourier query per output position, the encoder's inputs;
- ``cross_attention``: a ``CrossAttentionLayer`` from the query width to the latent width;
- ``head``: what each attended query becomes (``perceiver.decoders.heads``): class logits,
  token logits through the tied embedding, flow vectors laid out on the image grid, ...

All queries cross-attend to the latents independently, so the layer's ``chunk_size`` can
process them in chunks and keep memory bounded for hundreds of thousands of outputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from perceiver.decoders.queries import OutputQuery
from perceiver.modules.attention import CrossAttentionLayer


class PerceiverDecoder(nn.Module):
    """latents (B, L, C_latent) -> ``head(cross_attention(queries, latents))``.

    ``forward(latents, inputs=None, indices=None)``: ``inputs`` are the encoder's adapted
    inputs (what an ``InputQuery`` decodes from), ``indices`` the outputs to decode (see
    ``perceiver.decoders.queries``; None: all).
    """

    def __init__(
        self, output_query: OutputQuery, cross_attention: CrossAttentionLayer, head: nn.Module
    ) -> None:
        super().__init__()
        if cross_attention.num_q_channels != output_query.num_channels:
            raise ValueError(
                f"the decoder's cross-attention takes {cross_attention.num_q_channels}-channel "
                f"queries, its output query gives {output_query.num_channels}"
            )
        self.output_query = output_query
        self.cross_attention = cross_attention
        self.head = head

    @property
    def num_latent_channels(self) -> int:
        return self.cross_attention.num_kv_channels

    @property
    def chunk_size(self) -> int | None:
        """Queries per cross-attention chunk (None: all at once); settable after construction."""
        return self.cross_attention.chunk_size

    @chunk_size.setter
    def chunk_size(self, value: int | None) -> None:
        self.cross_attention.chunk_size = value

    def forward(self, latents: torch.Tensor, inputs: Any = None, indices: Any = None) -> Any:
        """latents: (B, L, C_latent) -> the head's output for the N decoded queries."""
        query = self.output_query(latents.shape[0], inputs, indices)  # (B, N, C_q)
        out = self.cross_attention(query.to(latents.dtype), latents)  # (B, N, C_q)
        return self.head(out)
