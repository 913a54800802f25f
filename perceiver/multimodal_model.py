"""Perceiver IO multimodal autoencoder: {modality: input} -> latents -> {modality: output}.

The Kinetics audio+video+label autoencoder of the Perceiver IO paper (Hugging Face's
``PerceiverForMultimodalAutoencoding``): a ``MultimodalInputAdapter`` in the encoder, a
``MultimodalDecoder`` whose per-modality queries may be subsampled, and a
``MultimodalPostprocessor`` turning decoder outputs into pixels, audio samples and label
logits. The latents of one clip are computed once and can be decoded in as many pieces as
memory requires (``decode`` with ``output_indices``, or ``reconstruct``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from perceiver.decoders.multimodal import MultimodalDecoder, OutputIndices
from perceiver.encoder import PerceiverEncoder
from perceiver.postprocessors import MultimodalPostprocessor


class MultimodalAutoencoder(nn.Module):
    """inputs: {modality: raw input} -> {modality: postprocessed outputs}.

    ``forward(inputs, output_indices)`` decodes the outputs ``output_indices`` names (see
    ``MultimodalDecoder``; None: all of them), as Hugging Face's ``subsampled_output_points``.
    """

    def __init__(
        self,
        encoder: PerceiverEncoder,
        decoder: MultimodalDecoder,
        postprocessor: MultimodalPostprocessor,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.postprocessor = postprocessor

    def forward(
        self,
        inputs: Mapping[str, torch.Tensor],
        output_indices: OutputIndices | None = None,
        pad_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(inputs, pad_mask), output_indices)

    def encode(
        self, inputs: Mapping[str, torch.Tensor], pad_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """{modality: raw input} -> latents (B, L, C)."""
        latents: torch.Tensor = self.encoder(inputs, pad_mask)
        return latents

    def decode(
        self, latents: torch.Tensor, output_indices: OutputIndices | None = None
    ) -> dict[str, torch.Tensor]:
        """latents (B, L, C) -> {modality: postprocessed outputs at ``output_indices``}."""
        result: dict[str, torch.Tensor] = self.postprocessor(self.decoder(latents, output_indices))
        return result

    @torch.no_grad()
    def reconstruct(
        self, inputs: Mapping[str, torch.Tensor], num_chunks: int
    ) -> dict[str, torch.Tensor]:
        """Every output of every modality, decoded in ``num_chunks`` pieces; no gradients.

        The inputs are encoded once; each modality's outputs are split into ``num_chunks``
        contiguous index ranges, chunk k decoding range k of every modality. Outputs of
        modalities on a grid of two or more axes are laid out on it: a video's pixels come
        back as (B, T, H, W, C). The result equals one-shot decoding.
        """
        if isinstance(num_chunks, bool) or num_chunks < 1:
            raise ValueError(f"num_chunks must be >= 1, got {num_chunks!r}")
        latents = self.encode(inputs)
        device = latents.device
        ranges = {
            name: torch.arange(self.decoder.num_outputs(name), device=device).tensor_split(
                num_chunks
            )
            for name in self.decoder.modalities
        }
        pieces: dict[str, list[torch.Tensor]] = {name: [] for name in ranges}
        for k in range(num_chunks):
            chunk = {name: r[k] for name, r in ranges.items() if r[k].numel()}
            if not chunk:
                continue
            for name, out in self.decode(latents, chunk).items():
                pieces[name].append(out)
        result = {}
        for name, parts in pieces.items():
            out = torch.cat(parts, dim=1)
            shape = self.decoder.index_shape(name)
            if len(shape) > 1 and out.dim() == 3 and out.shape[1] == self.decoder.num_outputs(name):
                out = out.reshape(out.shape[0], *shape, out.shape[-1])  # (B, *grid, C)
            result[name] = out
        return result
