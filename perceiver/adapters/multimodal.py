"""Multimodal input adapter: several modalities' input positions in one (B, M, C) array.

Perceiver IO's Kinetics autoencoder encodes video, audio and the class label together (as
Hugging Face's ``PerceiverMultimodalPreprocessor``):

1. each modality goes through its own adapter, giving (B, M_m, C_m);
2. every modality's channels are padded to a common width
   ``C = max_m C_m + min_padding_size`` with a trainable per-modality embedding (the same
   (C - C_m) vector at each of its positions), which also tells the encoder which modality a
   position belongs to;
3. in training, each position of modality m is replaced, with probability
   ``mask_probs[m]``, by a trainable per-modality mask token of width C; in eval mode the
   modalities in ``eval_masked`` are replaced entirely (e.g. the label the autoencoder is
   asked to predict) and all others are left as they are;
4. the modalities are concatenated along the positions in the adapters' order.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import torch
from torch import nn

from perceiver.adapters.base import InputAdapter


class MultimodalInputAdapter(InputAdapter):
    """{modality: raw input} -> (B, sum_m M_m, max_m C_m + min_padding_size).

    Positions are in the order of ``adapters`` (a mapping keeps its insertion order).
    Mask tokens exist for the modalities of ``mask_probs`` and ``eval_masked``.
    """

    def __init__(
        self,
        adapters: Mapping[str, InputAdapter],
        min_padding_size: int = 2,
        mask_probs: Mapping[str, float] | None = None,
        eval_masked: Collection[str] = (),
    ) -> None:
        super().__init__()
        if not adapters:
            raise ValueError("give at least one modality adapter, got none")
        if min_padding_size < 0:
            raise ValueError(f"min_padding_size must be >= 0, got {min_padding_size}")
        mask_probs = dict(mask_probs or {})
        for name in [*mask_probs, *eval_masked]:
            if name not in adapters:
                raise ValueError(f"masked modality {name!r} is not one of {sorted(adapters)}")
        for name, prob in mask_probs.items():
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"mask_probs[{name!r}]={prob} must be in [0, 1]")
        self.adapters = nn.ModuleDict(adapters)
        self.modalities = tuple(adapters)
        self.mask_probs = mask_probs
        self.eval_masked = frozenset(eval_masked)
        width = max(a.num_input_channels for a in adapters.values()) + min_padding_size
        self.num_input_channels = width
        self.padding = nn.ParameterDict(
            {
                name: nn.Parameter(0.02 * torch.randn(1, width - a.num_input_channels))
                for name, a in adapters.items()
            }
        )  # each (1, C - C_m)
        self.mask_tokens = nn.ParameterDict(
            {
                name: nn.Parameter(0.02 * torch.randn(1, width))
                for name in self.modalities
                if name in mask_probs or name in self.eval_masked
            }
        )  # each (1, C)

    def _mask(self, name: str, batch: int, num: int, device: torch.device) -> torch.Tensor | None:
        """(B, M_m, 1) True where the position is replaced by the mask token, or None."""
        if self.training:
            prob = self.mask_probs.get(name, 0.0)
            if prob == 0.0:
                return None
            return torch.rand(batch, num, 1, device=device) < prob
        if name in self.eval_masked:
            return torch.ones(batch, num, 1, dtype=torch.bool, device=device)
        return None

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """x: {modality: raw input} -> (B, M, C), modalities in the adapters' order."""
        if set(x) != set(self.modalities):
            raise ValueError(
                f"expected inputs for the modalities {list(self.modalities)}, got {sorted(x)}"
            )
        parts = []
        for name in self.modalities:
            out = self.adapters[name](x[name])  # (B, M_m, C_m)
            batch, num, _ = out.shape
            pad = self.padding[name].to(out.dtype).expand(batch, num, -1)  # (B, M_m, C - C_m)
            out = torch.cat([out, pad], dim=-1)  # (B, M_m, C)
            mask = self._mask(name, batch, num, out.device)
            if mask is not None:
                out = torch.where(mask, self.mask_tokens[name].to(out.dtype), out)  # (B, M_m, C)
            parts.append(out)
        return torch.cat(parts, dim=1)  # (B, M, C)
