"""Attention over the key/value positions in chunks, merged exactly by log-sum-exp.

``CrossAttentionLayer(kv_chunk_size=...)`` uses this for inputs with very many positions M:
the keys/values are produced chunk by chunk by a callback (``KVChunks``, e.g. LayerNorm and
k/v projection of an input slice), so neither the (N x M) scores nor the projected
(B, H, M, C) keys/values exist at once. With q (B, H, N, c) and a chunk's scores
``s_c = q k_c^T / sqrt(c)``, softmax attention is

    out = sum_c exp(s_c - lse) v_c,   lse = log sum_m exp(s_m) = logsumexp_c(lse_c),

where ``lse_c`` is the log-sum-exp of chunk c's scores. Two schedules compute it:

- without autograd (``torch.no_grad``/``inference_mode``): one pass with running max,
  running normaliser and running output (the online softmax of flash attention), each chunk
  rescaling what came before. Peak memory: one chunk's keys/values (B, H, kv_chunk, c) and
  one (B, H, query_chunk, kv_chunk) score block, besides the (B, H, N, c) queries/output.
- with autograd: two passes, each chunk wrapped in ``torch.utils.checkpoint`` (non-reentrant).
  Pass 1 computes every ``lse_c`` and merges them to ``lse`` (B, H, N); pass 2 sums
  ``exp(s_c - lse) v_c``. Autograd differentiates this exact formula, so gradients equal the
  unchunked ones, and the checkpoints keep only their inputs (the queries, ``lse``, slices
  of the caller's inputs); each chunk's keys/values and scores are recomputed in backward,
  one chunk at a time. Saved for backward: the (B, H, N, #chunks) per-chunk ``lse_c``
  stack, nothing of size M. The price is compute: keys and scores are computed twice in
  forward and twice again in backward (values once in each).

Attention dropout is applied to the probabilities of each chunk (pass 2 has the final
probabilities; the online pass drops from the running output but not the normaliser), which
is dropout on the softmax probabilities as in the unchunked attention: the same
distribution, not the same random draws as ``scaled_dot_product_attention``. Checkpointing
replays the RNG state, so the recomputed chunks see the forward's dropout masks.

Padded keys (``pad_mask`` True) get score -inf. A chunk whose keys are all padded for some
query row contributes nothing (its ``lse_c`` is -inf, no NaN in value or gradient); a row
with no unpadded key at all gets a zero output, as SDPA gives in PyTorch 2.13.

Scores, normalisers and running outputs are at least float32 (the inputs may be half
precision).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

KVChunks = Callable[[int, int, bool], tuple[torch.Tensor, torch.Tensor | None]]
"""``(start, end, values) -> (keys, values)`` of key/value positions ``start:end``, each
(B, H, end - start, c); ``values=False`` may return ``None`` values (pass 1 needs keys only)."""


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
    queries per score block. -> (B, H, N, Cv) in the values' dtype, equal to
    ``scaled_dot_product_attention`` up to float rounding (see the module docstring).
    """
    kv_bounds = chunk_bounds(num_kv, kv_chunk_size)
    q_bounds = chunk_bounds(q.shape[2], query_chunk_size)
    if torch.is_grad_enabled():
        return _two_pass_attention(q, kv_chunks, kv_bounds, q_bounds, pad_mask, dropout)
    return _online_attention(q, kv_chunks, kv_bounds, q_bounds, pad_mask, dropout)


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
