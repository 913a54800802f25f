"""The Perceiver layers: cross-attention (queries attend to another array) and self-attention.

Each layer is built from the modules it is given (``MultiHeadAttention``, ``MLP``; see
``perceiver.builders``), and adds the pre-LayerNorms and residuals around them.
``CrossAttentionLayer`` also has the memory-bounded paths of Perceiver IO at scale: query
chunking (decoders with very many outputs), input chunking merged by log-sum-exp
(``kv_chunked``) and attention computed in input space over batch-shared position channels
(``input_space``).

Shapes: B batch, N query positions, M key/value positions, C channels, H heads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from einops import rearrange
from torch import nn

from perceiver.modules.attention.input_space import input_space_pays, shared_input_attention
from perceiver.modules.attention.kv_chunked import KVChunks, kv_chunked_attention
from perceiver.modules.attention.multi_head import (
    MLP,
    MultiHeadAttention,
    attention_mask,
    split_heads,
    validate_chunk_size,
)
from perceiver.modules.inputs import SegmentedTable, SharedPositionInputs


def num_positions(inputs: torch.Tensor | SharedPositionInputs) -> int:
    """M of (B, M, C) inputs or of their ``SharedPositionInputs`` split."""
    return (inputs.per_sample if isinstance(inputs, SharedPositionInputs) else inputs).shape[1]


def shared_rows(shared: torch.Tensor | SegmentedTable, start: int, end: int) -> torch.Tensor:
    """Rows ``start:end`` (m, Cf) of a ``SharedPositionInputs.shared`` table, built from
    only the segments they overlap when the table is segmented."""
    if isinstance(shared, torch.Tensor):
        return shared[start:end]
    rows, offset = [], 0
    for varying, row in shared.segments:  # (n, k) and (Cf - k,)
        a, b = max(start - offset, 0), min(end - offset, varying.shape[0])
        if a < b:
            rows.append(torch.cat([varying[a:b], row.expand(b - a, -1)], dim=-1))
        offset += varying.shape[0]
    return torch.cat(rows, dim=0)


class CrossAttentionLayer(nn.Module):
    """Queries attend to a key/value array, then an MLP; both with residual connections.

    ``query_residual=False`` drops the residual around the attention, as Perceiver IO's
    decoders do when the query carries no information worth keeping.

    ``chunk_size`` bounds memory for very many queries (a decoder with hundreds of thousands
    of output positions): the keys/values are projected once, then the queries go through
    attention and MLP in chunks of at most ``chunk_size`` positions. Every query is processed
    independently of the others, so the result equals the unchunked one. It may be set after
    construction (e.g. only for inference) and is validated on assignment. In training,
    autograd still keeps every chunk's activations; chunking bounds the peak of one
    attention/MLP call, not the saved graph.

    ``kv_chunk_size`` bounds memory for very many inputs (key/value positions M, e.g. an
    encoder over hundreds of thousands of pixels): when M exceeds it, each slice of at most
    ``kv_chunk_size`` inputs is normalised and projected to keys/values on its own and the
    partial attentions are merged exactly by log-sum-exp (``kv_chunked``), so neither the
    (N x M) scores nor the (B, H, M, C) keys/values exist at once, in forward or (through
    per-chunk checkpointing, at the price of projecting each chunk's keys/values again) in
    backward. Without attention dropout on CPU each chunk goes
    through PyTorch's flash-attention kernel. Gradients equal the unchunked ones up to
    float rounding. It composes with ``chunk_size`` (with dropout or off CPU, score blocks
    are then at most chunk_size x kv_chunk_size), works with pad masks, and with attention
    dropout, which it applies to each chunk's probabilities (the same distribution as
    unchunked dropout, other random draws). ``SharedPositionInputs`` are then materialised
    one input chunk at a time instead of taking the input-space path, whose memory grows
    with M. Settable after construction and validated like ``chunk_size``.
    """

    def __init__(
        self,
        attention: MultiHeadAttention,
        mlp: MLP,
        query_residual: bool = True,
        chunk_size: int | None = None,
        kv_chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if mlp.num_channels != attention.num_q_input_channels:
            raise ValueError(
                f"the MLP's width {mlp.num_channels} must equal the query width "
                f"{attention.num_q_input_channels}"
            )
        self.q_norm = nn.LayerNorm(attention.num_q_input_channels)
        self.kv_norm = nn.LayerNorm(attention.num_kv_input_channels)
        self.attention = attention
        self.query_residual = query_residual
        self.mlp = mlp
        self.chunk_size = chunk_size
        self.kv_chunk_size = kv_chunk_size

    @property
    def num_q_channels(self) -> int:
        """Width of the queries (and of the output)."""
        return self.attention.num_q_input_channels

    @property
    def num_kv_channels(self) -> int:
        """Width of the keys/values' input."""
        return self.attention.num_kv_input_channels

    @property
    def chunk_size(self) -> int | None:
        """Queries per attention/MLP call (None: all at once)."""
        return self._chunk_size

    @chunk_size.setter
    def chunk_size(self, value: int | None) -> None:
        self._chunk_size = validate_chunk_size(value)

    @property
    def kv_chunk_size(self) -> int | None:
        """Key/value (input) positions per projection and score block (None: all at once)."""
        return self._kv_chunk_size

    @kv_chunk_size.setter
    def kv_chunk_size(self, value: int | None) -> None:
        self._kv_chunk_size = validate_chunk_size(value, "kv_chunk_size")

    def chunks_inputs(self, num_inputs: int) -> bool:
        """Whether ``num_inputs`` key/value positions are attended ``kv_chunk_size`` at a time."""
        return self.kv_chunk_size is not None and num_inputs > self.kv_chunk_size

    def forward(
        self,
        x_q: torch.Tensor,
        x_kv: torch.Tensor | SharedPositionInputs,
        pad_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x_q: (B, N, Cq), x_kv: (B, M, Ckv), pad_mask: (B, M) True where padded -> (B, N, Cq).

        ``x_kv`` may also be split into per-sample and batch-shared channels
        (``SharedPositionInputs``); then, when ``uses_shared_path`` allows, the attention
        runs without building the keys/values (``input_space``), else on the
        concatenated array (one input chunk at a time with ``kv_chunk_size``).
        """
        num_inputs = num_positions(x_kv)
        if self.chunks_inputs(num_inputs):
            return self._attend_kv_chunked(x_q, self._input_chunks(x_kv), num_inputs, pad_mask)
        if isinstance(x_kv, SharedPositionInputs):
            if pad_mask is None and self.uses_shared_path(x_q.shape[1]):
                return self._forward_shared(x_q, x_kv)
            x_kv = x_kv.materialize()
        k, v = self.project_kv(x_kv)
        return self.attend(x_q, k, v, attention_mask(pad_mask))

    def uses_shared_path(self, num_queries: int, num_inputs: int | None = None) -> bool:
        """Whether ``SharedPositionInputs`` for ``num_queries`` queries (over ``num_inputs``
        positions, if known) go through ``input_space``: no attention dropout, no
        input chunking (``chunks_inputs``) and no more cost than the ordinary path
        (``input_space_pays``; per query chunk when chunked)."""
        attention = self.attention
        if attention.dropout > 0.0 and self.training:
            return False
        if num_inputs is not None and self.chunks_inputs(num_inputs):
            return False
        if self.chunk_size is not None:
            num_queries = min(num_queries, self.chunk_size)
        return input_space_pays(
            attention.num_heads,
            num_queries,
            attention.k_proj.in_features,
            attention.k_proj.out_features,
            attention.v_proj.out_features,
        )

    def _forward_shared(self, x_q: torch.Tensor, x_kv: SharedPositionInputs) -> torch.Tensor:
        if self.chunk_size is None or x_q.shape[1] <= self.chunk_size:
            return self._attend_shared(x_q, x_kv)
        chunks = x_q.split(self.chunk_size, dim=1)  # each (B, <=chunk_size, Cq)
        return torch.cat([self._attend_shared(c, x_kv) for c in chunks], dim=1)

    def _attend_shared(self, x_q: torch.Tensor, x_kv: SharedPositionInputs) -> torch.Tensor:
        attention = self.attention
        q = attention.q_proj(self.q_norm(x_q))  # (B, N, Cqk)
        o = shared_input_attention(
            q, x_kv, self.kv_norm, attention.k_proj, attention.v_proj, attention.num_heads
        )  # (B, N, Cv)
        return self._residual_mlp(x_q, attention.o_proj(o))  # (B, N, Cq)

    def _input_chunks(
        self, x_kv: torch.Tensor | SharedPositionInputs
    ) -> Callable[[int, int], torch.Tensor]:
        """``(start, end) ->`` the (B, end - start, Ckv) inputs of positions ``start:end``."""
        if isinstance(x_kv, SharedPositionInputs):
            split = x_kv

            def shared_chunk(start: int, end: int) -> torch.Tensor:
                per_sample = split.per_sample[:, start:end]  # (B, m, Cp)
                shared = shared_rows(split.shared, start, end)  # (m, Cf)
                return split._replace(per_sample=per_sample, shared=shared).materialize()

            return shared_chunk
        return lambda start, end: x_kv[:, start:end]

    def _attend_kv_chunked(
        self,
        x_q: torch.Tensor,
        inputs: Callable[[int, int], torch.Tensor],
        num_inputs: int,
        pad_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Cross-attention over ``num_inputs`` positions whose (B, m, Ckv) slices ``inputs``
        gives, normalised and projected one ``kv_chunk_size`` chunk at a time -> (B, N, Cq)."""
        attention = self.attention

        def kv_chunks(
            start: int, end: int, values: bool
        ) -> tuple[torch.Tensor, torch.Tensor | None]:
            x = self.kv_norm(inputs(start, end))  # (B, m, Ckv)
            k = split_heads(attention.k_proj(x), attention.num_heads)  # (B, H, m, Cqk/H)
            if not values:
                return k, None
            return k, split_heads(attention.v_proj(x), attention.num_heads)  # (B, H, m, Cv/H)

        return self._attend_chunks(x_q, kv_chunks, num_inputs, pad_mask)

    def _attend_chunks(
        self,
        x_q: torch.Tensor,
        kv_chunks: KVChunks,
        num_inputs: int,
        pad_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """x_q: (B, N, Cq) attends to keys/values given chunk by chunk -> (B, N, Cq)."""
        assert self.kv_chunk_size is not None
        attention = self.attention
        q = split_heads(attention.q_proj(self.q_norm(x_q)), attention.num_heads)  # (B, H, N, c)
        o = kv_chunked_attention(
            q,
            kv_chunks,
            num_inputs,
            self.kv_chunk_size,
            pad_mask,
            dropout=attention.dropout if self.training else 0.0,
            query_chunk_size=self.chunk_size,
        )  # (B, H, N, Cv/H)
        attended = attention.o_proj(rearrange(o, "b h n c -> b n (h c)"))  # (B, N, Cq)
        if self.chunk_size is None or x_q.shape[1] <= self.chunk_size:
            return self._residual_mlp(x_q, attended)
        size = self.chunk_size
        chunks = zip(x_q.split(size, 1), attended.split(size, 1), strict=True)
        return torch.cat([self._residual_mlp(q, a) for q, a in chunks], dim=1)

    def _residual_mlp(self, x_q: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """(B, N, Cq) queries and their attention outputs -> (B, N, Cq) after residual + MLP."""
        x = x_q + attended if self.query_residual else attended
        return x + self.mlp(x)

    def project_kv(self, x_kv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_kv: (B, M, Ckv) -> normalised, projected keys and values, each (B, H, M, C/H)."""
        return self.attention.project_kv(self.kv_norm(x_kv))

    def attend(
        self,
        x_q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x_q: (B, N, Cq), k/v from ``project_kv``, attn_mask: (B, 1, 1, M) -> (B, N, Cq).

        With ``kv_chunk_size`` below M the scores are computed one key chunk at a time; the
        given keys/values exist whole, so this bounds the scores only.
        """
        num_inputs = k.shape[2]
        if self.chunks_inputs(num_inputs):
            pad_mask = None if attn_mask is None else ~attn_mask[:, 0, 0, :]  # (B, M)

            def kv_chunks(
                start: int, end: int, values: bool
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
                return k[:, :, start:end], v[:, :, start:end]

            return self._attend_chunks(x_q, kv_chunks, num_inputs, pad_mask)
        if self.chunk_size is None or x_q.shape[1] <= self.chunk_size:
            return self._attend_queries(x_q, k, v, attn_mask)
        chunks = x_q.split(self.chunk_size, dim=1)  # each (B, <=chunk_size, Cq)
        return torch.cat([self._attend_queries(c, k, v, attn_mask) for c in chunks], dim=1)

    def _attend_queries(
        self,
        x_q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        attn_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        attended = self.attention.attend(self.q_norm(x_q), k, v, attn_mask)  # (B, N, Cq)
        return self._residual_mlp(x_q, attended)


class SelfAttentionLayer(nn.Module):
    """Pre-LayerNorm self-attention then MLP, each with a residual: (B, N, C) -> (B, N, C)."""

    def __init__(self, attention: MultiHeadAttention, mlp: MLP) -> None:
        super().__init__()
        width = attention.num_q_input_channels
        if attention.num_kv_input_channels != width or mlp.num_channels != width:
            raise ValueError(
                f"self-attention needs one width: queries {width}, keys/values "
                f"{attention.num_kv_input_channels}, MLP {mlp.num_channels}"
            )
        self.norm = nn.LayerNorm(width)
        self.attention = attention
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.norm(x)  # (B, N, C)
        x = x + self.attention(normed, normed)  # (B, N, C)
        return x + self.mlp(x)


class SelfAttentionBlock(nn.Sequential):
    """Self-attention layers applied in sequence: (B, N, C) -> (B, N, C)."""

    def __init__(self, layers: Sequence[SelfAttentionLayer]) -> None:
        if not layers:
            raise ValueError("a self-attention block needs at least one layer, got none")
        super().__init__(*layers)
