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

``forward_shared`` hands the same array over split into per-sample and batch-shared
channels (``SharedPositionInputs``) when it has that layout: with Cp the widest per-sample
feature width among the modalities that are not fully masked (e.g. 48 for 1x4x4x3 video
patches), the first Cp channels of every position are per sample (a narrower modality's
remaining ones among them are its position/padding values, copied per sample) and channels
Cp..C are the same for every sample, because every position whose per-sample features
reach beyond Cp (e.g. the 700-wide label) is replaced by its mask token. That holds when
each modality is either fully masked (mask probability 1 in training, ``eval_masked`` in
eval) or not at all. It returns None, and the encoder takes the ordinary path, for a mask
probability strictly between 0 and 1 in training, for an unmasked wide modality (Cp reaching
past every unmasked modality's position channels, so that only padding would be shared, e.g.
the unmasked label) and for an adapter whose position channels are not known.

The shared channels come as a ``SegmentedTable``, one segment per modality: its remaining
position channels (the adapter's position buffer itself, not a copy) next to the rest of its
padding embedding, which is the same at each of its positions, or a masked modality's mask
token. The input cross-attention works on these segments
(``perceiver.modules.attention.input_space``), so neither the (M, C - Cp) table nor a dense
gradient of it is built.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import cast

import torch
from torch import nn

from perceiver.adapters.audio import AudioInputAdapter
from perceiver.adapters.label import LabelInputAdapter
from perceiver.adapters.video import VideoInputAdapter
from perceiver.modules.inputs import (
    InputAdapter,
    SegmentedTable,
    SharedPositionInputs,
    SharedSegment,
)


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

    def _fully_masked(self, name: str) -> bool | None:
        """Whether every position of ``name`` is replaced by its mask token (True), none is
        (False), or some are at random (None)."""
        if self.training:
            prob = self.mask_probs.get(name, 0.0)
            if prob == 1.0:  # torch.rand is < 1, so ``_mask`` masks every position
                return True
            return False if prob == 0.0 else None
        return name in self.eval_masked

    def _check_modalities(self, x: Mapping[str, torch.Tensor]) -> None:
        if set(x) != set(self.modalities):
            raise ValueError(
                f"expected inputs for the modalities {list(self.modalities)}, got {sorted(x)}"
            )

    def _split(self, name: str, x: torch.Tensor) -> SharedPositionInputs | None:
        """One modality's adapter output as per-sample (B, M_m, Cp_m) and batch-shared
        (M_m, C_m - Cp_m) channels, or None when its layout is not known."""
        adapter = cast(InputAdapter, self.adapters[name])
        split = adapter.forward_shared(x)
        if split is not None:
            return split
        if isinstance(adapter, LabelInputAdapter):
            out = adapter(x)  # (B, 1, K): all per sample
            return SharedPositionInputs(out, out.new_zeros(out.shape[1], 0))
        if isinstance(adapter, (AudioInputAdapter, VideoInputAdapter)):
            patches = adapter.patches(x)  # (B, M_m, Cp_m)
            pos = adapter.position_encoding(1)[0]  # (M_m, P): the buffer itself, no copy
            return SharedPositionInputs(patches, pos.to(patches.dtype))
        return None

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """x: {modality: raw input} -> (B, M, C), modalities in the adapters' order."""
        self._check_modalities(x)
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

    def forward_shared(  # type: ignore[override]
        self, x: Mapping[str, torch.Tensor]
    ) -> SharedPositionInputs | None:
        """x: {modality: raw input} -> per-sample (B, M, Cp) and batch-shared (M, C - Cp)
        channels whose ``materialize()`` equals ``forward(x)``, or None when the inputs are
        not [per-sample | batch-shared] (see the module docstring)."""
        self._check_modalities(x)
        adapters = cast(Mapping[str, InputAdapter], self.adapters)
        masked: dict[str, torch.Tensor] = {}  # fully masked: the adapter's output
        splits: dict[str, SharedPositionInputs] = {}
        for name in self.modalities:
            state = self._fully_masked(name)
            if state is None:
                return None  # positions masked at random: not batch-independent
            if state:
                masked[name] = adapters[name](x[name])  # checks the input, as forward
                continue
            split = self._split(name, x[name])
            if split is None:
                return None
            per_sample, shared = split
            if (
                per_sample.dim() != 3
                or len(shared.shape) != 2
                or shared.shape[0] != per_sample.shape[1]
                or per_sample.shape[-1] + shared.shape[-1] != adapters[name].num_input_channels
            ):
                return None
            splits[name] = split
        if not splits:
            return None
        shapes = [s.per_sample.shape for s in splits.values()] + [o.shape for o in masked.values()]
        dtypes = {s.per_sample.dtype for s in splits.values()} | {o.dtype for o in masked.values()}
        batch = shapes[0][0]
        if len(dtypes) != 1 or any(shape[0] != batch for shape in shapes):
            return None  # unusual: leave it to forward
        (dtype,) = dtypes
        cp = max(s.per_sample.shape[-1] for s in splits.values())
        if cp >= max(adapters[name].num_input_channels for name in splits):
            return None  # an unmasked wide modality (the label): only padding would be shared
        per_sample_parts, segments = [], []
        for name in self.modalities:
            if name in masked:
                num = masked[name].shape[1]
                # As in forward, the replaced padding (and adapter output) get zero gradients.
                zero = 0.0 * self.padding[name].sum()
                if masked[name].requires_grad:
                    zero = zero + 0.0 * masked[name].sum()
                token = self.mask_tokens[name].to(dtype) + zero.to(dtype)  # (1, C)
                per_sample_parts.append(token[:, :cp].expand(batch, num, -1))  # (B, M_m, Cp)
                segments.append(SharedSegment(token.new_empty(num, 0), token[0, cp:]))
                continue
            per_sample = splits[name].per_sample  # (B, M_m, Cp_m)
            num, width = per_sample.shape[1], per_sample.shape[2]
            table = splits[name].shared_table()  # (M_m, C_m - Cp_m)
            pad = self.padding[name][0].to(dtype)  # (C - C_m,): the same at every position
            extra = cp - width  # channels of [table | pad] that go to the per-sample part
            if extra > table.shape[1]:  # into the padding
                cut = extra - table.shape[1]
                head = torch.cat([table, pad[:cut].expand(num, -1)], dim=-1)  # (M_m, extra)
                segment = SharedSegment(table[:, table.shape[1] :], pad[cut:])
            else:
                head = table[:, :extra]  # (M_m, extra)
                segment = SharedSegment(table[:, extra:], pad)
            if extra:
                per_sample = torch.cat([per_sample, head.expand(batch, -1, -1)], dim=-1)
            per_sample_parts.append(per_sample)  # (B, M_m, Cp)
            segments.append(segment)  # (M_m, C - Cp) as [varying | row]
        return SharedPositionInputs(
            torch.cat(per_sample_parts, dim=1), SegmentedTable(segments)
        )  # (B, M, Cp), (M, C - Cp)
