"""Attention over the key/value positions in chunks, merged exactly by log-sum-exp.

``CrossAttentionLayer(kv_chunk_size=...)`` uses this for inputs with very many positions M:
the keys/values are produced chunk by chunk by a callback (``KVChunks``, e.g. LayerNorm and
k/v projection of an input slice), so neither the (N x M) scores nor the projected
(B, H, M, C) keys/values exist at once. With q (B, H, N, c), a chunk's scores
``s_c = q k_c^T / sqrt(c)``, its log-sum-exp ``lse_c`` and its own softmax output
``o_c = softmax(s_c) v_c``, softmax attention over all keys is

    out = sum_c exp(lse_c - lse) o_c = sum_c exp(s_c - lse) v_c,   lse = logsumexp_c(lse_c).

Fast path (no attention dropout, CPU tensors): every chunk goes through PyTorch's CPU
flash-attention kernel (``aten._scaled_dot_product_flash_attention_for_cpu``, the kernel
``scaled_dot_product_attention`` uses), which returns ``(o_c, lse_c)`` without materialising
the scores; the chunks are merged online into one running (output, lse) pair.

- Without autograd: that is all. Peak memory: one chunk's keys/values plus the kernel's
  fixed-size blocks, besides the (B, H, N, c) queries/output.
- With autograd: each chunk runs inside ``torch.utils.checkpoint`` (non-reentrant), which
  keeps only the queries; the chunk's keys/values are recomputed from the caller's inputs
  in backward, one chunk at a time, and backpropagated through the caller's projection
  (``_FlashChunk``). The backward of a chunk is the kernel's backward
  (``..._for_cpu_backward``) given the chunk's keys/values and the *final* output and
  *final* lse: as in FlashAttention-2's backward of one key block, that yields the chunk's
  exact share of dq (summed over chunks by autograd) and its exact dk, dv, because the
  probabilities ``exp(s_c - lse)`` and the softmax correction ``rowsum(dout * out)`` are
  those of the whole attention. Each checkpointed chunk returns zeros whose backward is
  the chunk's; their sum is added to the merged output, so every chunk's backward gets the
  output's gradient. Nothing of size M is saved (the chunks' pad masks are views of the
  caller's). The price: the keys/values are projected twice (forward and backward), the
  attention itself is computed once each way. (The first ``torch.utils.checkpoint`` call
  in a process imports ``torch._dynamo``: a one-time ~1.7 s and ~70 MiB.)

The kernel needs equal query/key and value head sizes; the narrower side is zero-padded
(zero channels change no score and give zero output channels; the scale stays 1/sqrt(c)).
It runs in float32 for half-precision inputs (as the scores, normalisers and running
outputs are at least float32 on both paths), in float64 for float64. ``query_chunk_size``
is not needed on this path: the kernel works in fixed-size query and key blocks itself.

Explicit path (attention dropout > 0, or not on CPU): score blocks (B, H, query_chunk,
kv_chunk) with explicit matmuls. Without autograd: one pass with running max, normaliser
and output (online softmax). With autograd: two passes, each chunk checkpointed; pass 1
merges the per-chunk ``lse_c`` (a (B, H, N, #chunks) stack is saved) to ``lse``, pass 2 sums
``exp(s_c - lse) v_c`` and autograd differentiates that exact formula. Keys and scores are
then computed twice in forward and twice again in backward. Attention dropout is applied
to the probabilities of each chunk (pass 2 has the final probabilities; the online pass
drops from the running output but not the normaliser), which is dropout on the softmax
probabilities as in the unchunked attention: the same distribution, not the same random
draws as ``scaled_dot_product_attention``. Checkpointing replays the RNG state, so the
recomputed chunks see the forward's dropout masks.

Padded keys (``pad_mask`` True) get score -inf (an additive mask on the fast path). A chunk
whose keys are all padded for a sample contributes nothing (its ``lse_c`` is -inf, no NaN
in value or gradient); a row with no unpadded key at all gets a zero output, as SDPA gives
in PyTorch 2.13.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint

KVChunks = Callable[[int, int, bool], tuple[torch.Tensor, torch.Tensor | None]]
"""``(start, end, values) -> (keys, values)`` of key/value positions ``start:end``, each
(B, H, end - start, c); ``values=False`` may return ``None`` values (pass 1 needs keys only)."""

_FLASH = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default
_FLASH_BACKWARD = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward.default


def chunk_bounds(total: int, size: int | None) -> list[tuple[int, int]]:
    """``[(0, size), (size, 2 size), ..., (., total)]``; one chunk when ``size`` is None."""
    if size is None or total <= size:
        return [(0, total)]
    return [(start, min(start + size, total)) for start in range(0, total, size)]


def _stats_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision inputs, else the inputs' dtype (float32 or float64)."""
    return torch.promote_types(dtype, torch.float32)


def _finite_or_zero(x: torch.Tensor) -> torch.Tensor:
    """-inf (a row without unpadded keys) -> 0, so ``s - x`` stays -inf instead of NaN."""
    return torch.where(torch.isfinite(x), x, torch.zeros_like(x))


def kv_chunked_attention(
    q: torch.Tensor,
    kv_chunks: KVChunks,
    num_kv: int,
    kv_chunk_size: int,
    pad_mask: torch.Tensor | None = None,
    dropout: float = 0.0,
    query_chunk_size: int | None = None,
) -> torch.Tensor:
    """Softmax attention of q over ``num_kv`` key/value positions, ``kv_chunk_size`` at a time.

    q: (B, H, N, c) projected queries (unscaled); ``kv_chunks(start, end, values)`` gives the
    keys/values of positions ``start:end``; pad_mask: (B, M) True where padded; dropout: the
    attention-probability dropout to apply (0 in eval); ``query_chunk_size`` also bounds the
    queries per score block of the explicit path. -> (B, H, N, Cv) in the values' dtype,
    equal to ``scaled_dot_product_attention`` up to float rounding (see the module docstring).
    """
    kv_bounds = chunk_bounds(num_kv, kv_chunk_size)
    if uses_flash(q, dropout):
        return _flash_attention(q, kv_chunks, kv_bounds, pad_mask)
    q_bounds = chunk_bounds(q.shape[2], query_chunk_size)
    if torch.is_grad_enabled():
        return _two_pass_attention(q, kv_chunks, kv_bounds, q_bounds, pad_mask, dropout)
    return _online_attention(q, kv_chunks, kv_bounds, q_bounds, pad_mask, dropout)


def uses_flash(q: torch.Tensor, dropout: float) -> bool:
    """Whether queries like ``q`` take the flash-kernel path (no dropout, CPU tensors)."""
    return dropout == 0.0 and q.device.type == "cpu"


# -- fast path: the CPU flash-attention kernel per chunk ---------------------------------------


class _FlashMerge:
    """The chunks' (output, lse) merged as they come. Once ``done`` (all chunks in), ``out``
    and ``lse`` are the final ones, which the backward of every chunk uses."""

    def __init__(self) -> None:
        self.out: torch.Tensor | None = None  # (B, H, N, W): softmax output over chunks so far
        self.lse: torch.Tensor | None = None  # (B, H, N): their log-sum-exp, -inf if none
        self.value_dim = 0  # Cv <= W
        self.value_dtype = torch.float32
        self.done = False

    def add(self, out: torch.Tensor, lse: torch.Tensor) -> None:
        if self.out is None or self.lse is None:
            self.out, self.lse = out, lse
            return
        new = torch.logaddexp(self.lse, lse)  # -inf where both are
        shift = _finite_or_zero(new)
        self.out.mul_(torch.exp(self.lse - shift)[..., None])
        self.out.add_(out * torch.exp(lse - shift)[..., None])
        self.lse = new

    def finish(self) -> tuple[torch.Tensor, torch.Tensor]:
        """-> the final output and the lse for backward (0 where -inf: masked rows)."""
        assert self.out is not None and self.lse is not None
        self.done = True
        self.lse = _finite_or_zero(self.lse)
        return self.out, self.lse


def _chunk_pad(pad_mask: torch.Tensor | None, start: int, end: int) -> torch.Tensor | None:
    """The (B, m) pad mask of a chunk (a view), None if it pads no key."""
    if pad_mask is None:
        return None
    pad = pad_mask[:, start:end]
    return pad if pad.any() else None


def _additive_mask(pad: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(B, m) pad mask -> the kernel's (B, 1, 1, m) mask: -inf at padded keys, else 0."""
    if pad is None:
        return None
    mask = torch.zeros(pad.shape[0], 1, 1, pad.shape[1], dtype=dtype, device=pad.device)
    return mask.masked_fill(pad[:, None, None, :], float("-inf"))


def _flash_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pad: torch.Tensor | None, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk through the kernel -> output (B, H, N, W), lse (B, H, N)."""
    mask = _additive_mask(pad, q.dtype)
    out, lse = _FLASH(q, k, v, 0.0, False, attn_mask=mask, scale=scale)
    if pad is not None:  # the kernel's lse of all-padded rows is 0, not -inf
        empty = pad.all(-1)  # (B,)
        lse = lse.masked_fill(empty[:, None, None], float("-inf"))
        out = out.masked_fill(empty[:, None, None, None], 0.0)
    return out, lse


def _flash_inputs(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, merge: _FlashMerge
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries and one chunk's keys/values in the stats dtype and zero-padded to one head
    size; notes the values' size and dtype in ``merge``."""
    merge.value_dim, merge.value_dtype = v.shape[-1], v.dtype
    dtype = _stats_dtype(q.dtype)
    width = max(q.shape[-1], v.shape[-1])
    q, k, v = (t.to(dtype) for t in (q, k, v))
    if q.shape[-1] < width:
        q, k = F.pad(q, (0, width - q.shape[-1])), F.pad(k, (0, width - k.shape[-1]))
    if v.shape[-1] < width:
        v = F.pad(v, (0, width - v.shape[-1]))
    return q, k, v


class _FlashChunk(torch.autograd.Function):
    """Attention of q over one chunk, merged into a ``_FlashMerge``; returns zeros (the
    merged output comes from the merge once all chunks are in).

    It exists for its backward: the kernel's backward of this chunk given the final output
    and lse, i.e. the chunk's exact share of dq and its dk, dv (see the module docstring).
    Run inside a checkpoint: when the checkpoint recomputes the chunk's keys/values for
    backward, ``merge.done`` skips the attention."""

    @staticmethod
    def forward(
        ctx: Any,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        merge: _FlashMerge,
        pad: torch.Tensor | None,
        scale: float,
    ) -> torch.Tensor:
        if not merge.done:
            merge.add(*_flash_forward(q, k, v, pad, scale))
        ctx.save_for_backward(q, k, v)
        ctx.merge, ctx.pad, ctx.scale = merge, pad, scale
        return q.new_zeros(q.shape)  # (B, H, N, W), W = the head size of q, k and v

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v = ctx.saved_tensors
        merge: _FlashMerge = ctx.merge
        dq, dk, dv = _FLASH_BACKWARD(
            grad.contiguous(),
            q,
            k,
            v,
            merge.out,
            merge.lse,
            0.0,
            False,
            attn_mask=_additive_mask(ctx.pad, q.dtype),
            scale=ctx.scale,
        )
        return dq, dk, dv, None, None, None


def _flash_attention(
    q: torch.Tensor,
    kv_chunks: KVChunks,
    kv_bounds: list[tuple[int, int]],
    pad_mask: torch.Tensor | None,
) -> torch.Tensor:
    """Each chunk through the flash kernel, merged online; checkpointed with autograd."""
    merge = _FlashMerge()
    scale = q.shape[-1] ** -0.5
    zeros: torch.Tensor | None = None  # with autograd: sum of zeros carrying the backwards
    for start, end in kv_bounds:
        pad = _chunk_pad(pad_mask, start, end)  # (B, m) or None

        def chunk(
            q: torch.Tensor, start: int = start, end: int = end, pad: torch.Tensor | None = pad
        ) -> torch.Tensor:
            k, v = kv_chunks(start, end, True)  # (B, H, m, c), (B, H, m, Cv)
            assert v is not None
            q, k, v = _flash_inputs(q, k, v, merge)
            return _FlashChunk.apply(q, k, v, merge, pad, scale)

        if torch.is_grad_enabled():
            part = checkpoint(chunk, q, use_reentrant=False)  # (B, H, N, W)
            zeros = part if zeros is None else zeros + part
        else:
            k, v = kv_chunks(start, end, True)
            assert v is not None
            merge.add(*_flash_forward(*_flash_inputs(q, k, v, merge), pad, scale))
    out, _ = merge.finish()  # (B, H, N, W)
    if zeros is not None:
        out = out + zeros
    return out[..., : merge.value_dim].to(merge.value_dtype)  # (B, H, N, Cv)


# -- explicit path: score blocks with matmuls (attention dropout, not on CPU) ------------------


def _scores(q: torch.Tensor, k: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
    """q: (B, H, n, c), k: (B, H, m, c), pad_mask: (B, m) -> scores (B, H, n, m), at least
    float32, with the SDPA scale 1/sqrt(c), -inf at padded keys."""
    s = torch.matmul(q, k.transpose(-1, -2))
    s = s.to(_stats_dtype(s.dtype)) * q.shape[-1] ** -0.5  # (B, H, n, m)
    if pad_mask is not None:
        s = s.masked_fill(pad_mask[:, None, None, :], float("-inf"))
    return s


def _logsumexp(s: torch.Tensor) -> torch.Tensor:
    """log(sum(exp(s), -1)): (..., m) -> (...), and -inf where every entry is -inf.

    Unlike ``torch.logsumexp`` no NaN appears in the gradient of an all -inf row (it is
    zero). The shift by the row maximum is detached: the result does not depend on it.
    """
    shift = _finite_or_zero(s.amax(-1, keepdim=True).detach())  # (..., 1)
    total = torch.exp(s - shift).sum(-1)  # (...), >= 1 unless the row is all -inf
    empty = total == 0
    lse = torch.log(torch.where(empty, torch.ones_like(total), total)) + shift.squeeze(-1)
    return torch.where(empty, torch.full_like(lse, float("-inf")), lse)


def _online_attention(
    q: torch.Tensor,
    kv_chunks: KVChunks,
    kv_bounds: list[tuple[int, int]],
    q_bounds: list[tuple[int, int]],
    pad_mask: torch.Tensor | None,
    dropout: float,
) -> torch.Tensor:
    """One pass with running statistics per query row; for use without autograd."""
    batch, heads, num_queries, _ = q.shape
    stats_dtype = _stats_dtype(q.dtype)
    row_max = q.new_full((batch, heads, num_queries), float("-inf"), dtype=stats_dtype)
    norm = torch.zeros_like(row_max)  # (B, H, N): sum exp(s - max) over the keys so far
    out: torch.Tensor | None = None  # (B, H, N, Cv), stats dtype: sum exp(s - max) v
    v_dtype = q.dtype
    for start, end in kv_bounds:
        k, v = kv_chunks(start, end, True)  # (B, H, m, c), (B, H, m, Cv)
        assert v is not None
        v_dtype = v.dtype
        if out is None:
            out = row_max.new_zeros(batch, heads, num_queries, v.shape[-1])
        pad = None if pad_mask is None else pad_mask[:, start:end]  # (B, m)
        for a, b in q_bounds:
            s = _scores(q[:, :, a:b], k, pad)  # (B, H, n, m)
            new_max = torch.maximum(row_max[:, :, a:b], s.amax(-1))  # (B, H, n)
            shift = _finite_or_zero(new_max)
            rescale = torch.exp(row_max[:, :, a:b] - shift)  # (B, H, n): 0 before any key
            p = torch.exp(s - shift[..., None])  # (B, H, n, m), 0 at padded keys
            norm[:, :, a:b] = norm[:, :, a:b] * rescale + p.sum(-1)
            if dropout > 0.0:
                p = F.dropout(p, dropout)
            pv = torch.matmul(p.to(v.dtype), v).to(stats_dtype)  # (B, H, n, Cv)
            out[:, :, a:b] = out[:, :, a:b] * rescale[..., None] + pv
            row_max[:, :, a:b] = new_max
    assert out is not None
    norm = torch.where(norm > 0, norm, torch.ones_like(norm))  # rows without any key: 0
    return (out / norm[..., None]).to(v_dtype)


def _two_pass_attention(
    q: torch.Tensor,
    kv_chunks: KVChunks,
    kv_bounds: list[tuple[int, int]],
    q_bounds: list[tuple[int, int]],
    pad_mask: torch.Tensor | None,
    dropout: float,
) -> torch.Tensor:
    """Pass 1: lse (B, H, N); pass 2: sum_c exp(s_c - lse) v_c; each chunk checkpointed."""

    def chunk_pad(start: int, end: int) -> torch.Tensor | None:
        return None if pad_mask is None else pad_mask[:, start:end]  # (B, m)

    def chunk_lse(q: torch.Tensor, start: int, end: int) -> torch.Tensor:
        k, _ = kv_chunks(start, end, False)  # (B, H, m, c)
        pad = chunk_pad(start, end)
        return torch.cat(
            [_logsumexp(_scores(q[:, :, a:b], k, pad)) for a, b in q_bounds], dim=2
        )  # (B, H, N)

    def chunk_out(q: torch.Tensor, lse: torch.Tensor, start: int, end: int) -> torch.Tensor:
        k, v = kv_chunks(start, end, True)  # (B, H, m, c), (B, H, m, Cv)
        assert v is not None
        pad = chunk_pad(start, end)
        outs = []
        for a, b in q_bounds:
            s = _scores(q[:, :, a:b], k, pad)  # (B, H, n, m)
            p = torch.exp(s - lse[:, :, a:b, None])  # final probabilities of this chunk
            if dropout > 0.0:
                p = F.dropout(p, dropout)
            outs.append(torch.matmul(p.to(v.dtype), v))  # (B, H, n, Cv)
        return torch.cat(outs, dim=2)  # (B, H, N, Cv)

    chunk_lses = [checkpoint(chunk_lse, q, s, e, use_reentrant=False) for s, e in kv_bounds]
    lse = _finite_or_zero(_logsumexp(torch.stack(chunk_lses, dim=-1)))  # (B, H, N)
    out: torch.Tensor | None = None  # (B, H, N, Cv), stats dtype
    for start, end in kv_bounds:
        part = checkpoint(chunk_out, q, lse, start, end, use_reentrant=False)  # (B, H, N, Cv)
        part32 = part.to(_stats_dtype(part.dtype))
        out = part32 if out is None else out + part32
    assert out is not None
    return out.to(part.dtype)
