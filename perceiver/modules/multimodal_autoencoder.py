"""Perceiver IO multimodal autoencoder: {modality: input} -> latents -> {modality: output}.

The Kinetics audio+video+label autoencoder of the Perceiver IO paper (Hugging Face's
``PerceiverForMultimodalAutoencoding``): a ``MultimodalInputAdapter`` in the encoder, a
``PerceiverDecoder`` whose ``MultimodalQuery`` may be subsampled per modality, and a
``MultimodalPostprocessor`` turning the decoded features into pixels, audio samples and label
logits. The latents of one clip are computed once and can be decoded in as many pieces as
memory requires (``decode`` with ``output_indices``, or ``reconstruct``).

Code written for transformers runs unchanged: ``subsampled_output_points=`` (Hugging Face's
keyword) is accepted beside ``output_indices=`` and means the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, cast

import torch
from torch import nn

from perceiver.modules.encoder import PerceiverEncoder

OutputIndices = Mapping[str, torch.Tensor | None]
"""Per modality, the (n,) flat indices of the outputs to decode (None: all of them)."""


class ModalityQueries(Protocol):
    """What the autoencoder needs of its decoder's query (``decoders.MultimodalQuery``)."""

    modalities: tuple[str, ...]

    def sizes(self, indices: OutputIndices | None) -> dict[str, int]: ...

    def num_outputs(self, modality: str) -> int: ...

    def index_shape(self, modality: str) -> tuple[int, ...]: ...


class MultimodalAutoencoder(nn.Module):
    """inputs: {modality: raw input} -> {modality: postprocessed outputs}.

    ``forward(inputs, output_indices)`` decodes the outputs ``output_indices`` names (see
    ``perceiver.decoders.queries.MultimodalQuery``; None: all of them).
    """

    def __init__(
        self, encoder: PerceiverEncoder, decoder: nn.Module, postprocessor: nn.Module
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.postprocessor = postprocessor

    @property
    def queries(self) -> ModalityQueries:
        return cast(ModalityQueries, self.decoder.output_query)

    def forward(
        self,
        inputs: Mapping[str, torch.Tensor],
        output_indices: OutputIndices | None = None,
        pad_mask: torch.Tensor | None = None,
        subsampled_output_points: OutputIndices | None = None,
    ) -> dict[str, torch.Tensor]:
        if subsampled_output_points is not None:
            if output_indices is not None:
                raise ValueError("give output_indices or subsampled_output_points, not both")
            output_indices = subsampled_output_points
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
        sizes = self.queries.sizes(output_indices)
        out = self.decoder(latents, indices=output_indices)  # (B, N, C_out)
        parts = dict(zip(sizes, out.split(list(sizes.values()), dim=1), strict=True))
        result: dict[str, torch.Tensor] = self.postprocessor(parts)
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
        queries = self.queries
        ranges = {
            name: torch.arange(queries.num_outputs(name), device=device).tensor_split(num_chunks)
            for name in queries.modalities
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
            shape = queries.index_shape(name)
            if len(shape) > 1 and out.dim() == 3 and out.shape[1] == queries.num_outputs(name):
                out = out.reshape(out.shape[0], *shape, out.shape[-1])  # (B, *grid, C)
            result[name] = out
        return result
