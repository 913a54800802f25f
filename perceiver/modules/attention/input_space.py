"""Cross-attention over inputs whose position channels are shared by the whole batch.

An image adapter's output is ``x = [p | f]``: per-sample channels ``p`` (B, M, Cp) and
position channels ``f`` (M, Cf) that are the same for every sample (``SharedPositionInputs``).
The input cross-attention normalises ``x`` (LayerNorm over all Cp + Cf channels, weight
``g``, bias ``beta``), projects it to keys ``k = LN(x) Wk^T + bk`` and values
``v = LN(x) Wv^T + bv`` and lets the latent queries attend to them. With
``xhat = (x - mu) * rstd`` (mu, rstd per sample and position):

- mu and rstd come from the per-sample channels plus per-position mean and spread of ``f``
  (``layer_norm_stats``), so the normalised (B, M, Cp + Cf) array is never built;
- by associativity the attention is computed in the input channel space instead of the
  key/value space: a query's score against position m is
  ``q . k_m = (q Wk diag(g)) . xhat_m + q . (Wk beta + bk)``, and the attended value is
  ``sum_m P_lm v_m = (sum_m P_lm xhat_m) diag(g) Wv^T + Wv beta + bv`` (probabilities sum to 1).
  ``q Wk diag(g)`` is a small (L, C) array per head, and the constant ``q . (Wk beta + bk)``
  shifts a whole row of scores, which softmax ignores. So neither the keys nor the values
  (B, M, Ck + Cv) are computed: no k/v projection forward, no gradients of k and v and
  no (M, C) x (C, Ck + Cv) weight gradients. What remains are, per sample, two (H*L, C) x
  (C, M)-sized products forward (scores, attended inputs) and three backward (the scores
  again, score and query gradients), against ``[p, mu]`` and ``f``, one sample at a time.

The shared channels may also come as a ``SegmentedTable`` (the multimodal adapter's): runs
of positions whose channels are ``[varying (n, k) | row (Cf - k,)]``, the row being the same
at each of the run's positions (a padding embedding, a mask token). A row's part of a score
is then one number per query and run, its part of the attended inputs the run's summed
probabilities times the row, and its gradient a sum over the run computed from (H*L,)-sized
vectors: the products shrink to the varying channels, and neither the (M, Cf) table nor a
dense gradient of it is built.

``_NormalizedInputAttention`` is the core (``softmax(Z xhat^T) xhat`` with queries Z in input
space, the LayerNorm statistics and their gradients included) as an autograd function. For
backward it keeps the small inputs, mu, rstd and each score row's maximum and sum; like flash
attention, it recomputes the scores and probabilities there instead of keeping the
(B, H, L, M) probabilities (one more (H*L, C) x (C, M)-sized product per sample). It builds
no keys/values, normalised inputs or (M, C) arrays, and gradients with respect to ``p`` and
the shared channels only when they require them (pixels and Fourier features do not; padding
embeddings and mask tokens do). Each head scores and attends over all C input channels, so
scores plus attended inputs cost 2 * H * L * M * C multiply-adds where the ordinary path's
projections, scores and attended values cost (C + L) * M * (Ck + Cv); it is used only when
it costs no more (``input_space_pays``), and ``CrossAttentionLayer`` falls back to the
ordinary path otherwise, with pad masks, and with active attention dropout.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import torch
from einops import rearrange
from torch import nn
from torch.autograd.function import once_differentiable

from perceiver.modules.inputs import SegmentedTable, SharedPositionInputs, SharedSegment

# Columns per block of ``_column_dots``: bounds its (H*L, block) temporary.
COLUMN_BLOCK = 4096


def as_segments(
    shared: torch.Tensor | SegmentedTable, dtype: torch.dtype
) -> tuple[SharedSegment, ...]:
    """Shared channels as segments in ``dtype``; a plain (M, Cf) table is one segment."""
    if isinstance(shared, SegmentedTable):
        return shared.to(dtype).segments
    table = shared.to(dtype)
    return (SharedSegment(table, table.new_empty(0)),)


def shared_moments(segments: Sequence[SharedSegment]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per position of the shared table: the mean of its Cf channels and their sum of
    squared deviations from it, both (M,) in float64, without building the table.

    Each segment's varying channels and its row are combined from their own means and
    spreads (``var_mean``), so no (M, Cf) temporary is built and nothing cancels.
    """
    means, squares = [], []
    for varying, row in segments:
        num, width = varying.shape
        parts = []  # (count, mean, sum of squared deviations from that mean)
        if width:
            var, mean = torch.var_mean(varying, dim=-1, correction=0)  # (n,) each
            parts.append((width, mean.double(), width * var.double()))
        if row.numel():
            var, mean = torch.var_mean(row, correction=0)  # scalars
            parts.append((row.numel(), mean.double(), row.numel() * var.double()))
        mean = varying.new_zeros(num, dtype=torch.float64)
        square = varying.new_zeros(num, dtype=torch.float64)
        total = sum(count for count, _, _ in parts)
        if total:
            mean = mean + sum(count * m for count, m, _ in parts) / total
            for count, m, s in parts:
                square = square + s + count * (m - mean).square()
        means.append(mean)
        squares.append(square)
    return torch.cat(means), torch.cat(squares)


def _normalization(
    per_sample: torch.Tensor,
    shared_mean: torch.Tensor,
    shared_square: torch.Tensor,
    num_shared: int,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """LayerNorm mean and 1/std of ``[per_sample | shared]`` from the shared moments.

    per_sample: (..., M, Cp), shared moments (M,) -> mu, rstd: (..., M). The variance adds
    non-negative parts, sum_p (p - mu)^2 + sum_f (f - mean f)^2 + Cf (mean f - mu)^2, combined
    in float64, so it does not cancel (as E[x^2] - mu^2 would with a large mean).
    """
    channels = per_sample.shape[-1] + num_shared
    p = per_sample.double()
    mu = (p.sum(-1) + num_shared * shared_mean) / channels  # (..., M)
    sq = (p - mu.unsqueeze(-1)).square().sum(-1) + shared_square
    sq = sq + num_shared * (shared_mean - mu).square()
    rstd = (sq / channels + eps).rsqrt()  # biased variance, as LayerNorm
    return mu.to(per_sample.dtype), rstd.to(per_sample.dtype)


def layer_norm_stats(
    per_sample: torch.Tensor, shared: torch.Tensor | SegmentedTable, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """LayerNorm mean and 1/std of ``[per_sample | shared]`` without concatenating them.

    per_sample: (B, M, Cp), shared: (M, Cf) -> mu, rstd: (B, M). ``_NormalizedInputAttention``
    computes these itself, and their gradients within its own backward.
    """
    segments = as_segments(shared, per_sample.dtype)
    num_shared = segments[0].varying.shape[1] + segments[0].row.shape[0]
    return _normalization(per_sample, *shared_moments(segments), num_shared, eps)


def input_space_pays(
    num_heads: int, num_queries: int, num_input_channels: int, qk: int, v: int
) -> bool:
    """Whether scoring/attending in the input space costs no more multiply-adds per input
    position than projecting keys/values and scoring/attending over them."""
    return 2 * num_heads * num_queries * num_input_channels <= (
        num_input_channels + num_queries
    ) * (qk + v)


def _augment(z: torch.Tensor, cp: int) -> torch.Tensor:
    """z: (..., Cp + Cf) -> [z_p, -sum(z), z_f] (..., Cp + 1 + Cf), so that
    z . (x_m - mu_m) = augmented z . [p_m, mu_m, f_m]."""
    return torch.cat([z[..., :cp], -z.sum(-1, keepdim=True), z[..., cp:]], dim=-1)


def _scores(
    za: torch.Tensor, pm: torch.Tensor, segments: Sequence[SharedSegment], out: torch.Tensor
) -> torch.Tensor:
    """out_lm = za_l . [p_m, mu_m, f_m] = z_l . (x_m - mu_m) for every query row l.

    za: (HL, Cp + 1 + Cf) augmented (``_augment``), pm: [p, mu] (M, Cp + 1),
    out: (HL, M) written in place. A segment's row adds one number per query row.
    """
    cp1 = pm.shape[1]
    torch.mm(za[:, :cp1], pm.t(), out=out)  # (HL, M): per-sample channels and mean
    zf = za[:, cp1:]  # (HL, Cf)
    start = 0
    for varying, row in segments:
        num, width = varying.shape
        block = out[:, start : start + num]  # (HL, n)
        if width:
            block.addmm_(zf[:, :width], varying.t())
        if row.numel():
            block.add_((zf[:, width:] @ row).unsqueeze(-1))  # (HL, 1)
        start += num
    return out


def _weighted_inputs(
    w: torch.Tensor, pm: torch.Tensor, segments: Sequence[SharedSegment]
) -> torch.Tensor:
    """sum_m w_lm (x_m - mu_m): w (HL, M), pm = [p, mu] (M, Cp + 1) -> (HL, Cp + Cf).

    A segment's row contributes its columns times the segment's summed weights."""
    cp = pm.shape[1] - 1
    cf = segments[0].varying.shape[1] + segments[0].row.shape[0]
    y = w @ pm  # (HL, Cp + 1): per-sample channels and sum_m w_lm mu_m
    out = w.new_empty(w.shape[0], cp + cf)
    out[:, :cp] = y[:, :cp]
    yf = out[:, cp:]  # (HL, Cf)
    yf.zero_()
    start = 0
    for varying, row in segments:
        num, width = varying.shape
        block = w[:, start : start + num]  # (HL, n)
        if width:
            yf[:, :width].addmm_(block, varying)
        if row.numel():
            yf[:, width:].addr_(block.sum(-1), row)
        start += num
    return out.sub_(y[:, cp:])


def _column_dots(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum_l a_lm b_lm: (HL, M), (HL, M) -> (M,), in blocks of columns."""
    out = a.new_empty(a.shape[1])
    for start in range(0, a.shape[1], COLUMN_BLOCK):
        cols = slice(start, start + COLUMN_BLOCK)
        torch.sum(a[:, cols] * b[:, cols], dim=0, out=out[cols])
    return out


def _segment_pairs(tables: Sequence[torch.Tensor]) -> list[SharedSegment]:
    return [SharedSegment(tables[i], tables[i + 1]) for i in range(0, len(tables), 2)]


class _NormalizedInputAttention(torch.autograd.Function):
    """yc = softmax(Z xhat^T) xhat per sample and head, xhat = LN([p | f]) without affine.

    ``apply(z, p, eps, *tables)``: Z (B, H, L, C) queries in input space (already scaled),
    p: (B, M, Cp), the shared channels as segments flattened to ``varying_1, row_1, ...``
    (``SharedSegment``; a plain (M, Cf) table is ``f, empty``) -> (B, H, L, C). Samples are
    processed one at a time, so the only (H*L, M) arrays are one sample's temporaries, in
    forward and in backward, which recomputes the scores.
    """

    @staticmethod
    def forward(
        ctx: Any, z: torch.Tensor, p: torch.Tensor, eps: float, *tables: torch.Tensor
    ) -> torch.Tensor:
        segments = _segment_pairs(tables)
        batch, heads, queries, channels = z.shape
        num_positions, cp = p.shape[1], p.shape[2]
        rows = heads * queries
        z2 = z.reshape(batch, rows, channels)
        za = _augment(z2, cp)  # (B, HL, C + 1)
        moments = shared_moments(segments)  # (M,) each, float64
        scores = z.new_empty(rows, num_positions)  # one sample's
        probs = z.new_empty(rows, num_positions)
        mu = p.new_empty(batch, num_positions)
        rstd = p.new_empty(batch, num_positions)
        row_max = z.new_empty(batch, rows, 1)
        row_sum = z.new_empty(batch, rows, 1)
        out = z.new_empty(batch, rows, channels)
        for b in range(batch):
            mu[b], rstd[b] = _normalization(p[b], *moments, channels - cp, eps)
            pm = torch.cat([p[b], mu[b, :, None]], dim=-1)  # (M, Cp + 1)
            s = _scores(za[b], pm, segments, out=scores).mul_(rstd[b])  # z . xhat_m
            row_max[b] = s.amax(-1, keepdim=True)
            torch.sub(s, row_max[b], out=probs).exp_()
            row_sum[b] = probs.sum(-1, keepdim=True)
            probs.div_(row_sum[b]).mul_(rstd[b])  # softmax over positions, times rstd_m
            out[b] = _weighted_inputs(probs, pm, segments)  # sum_m P_lm xhat_m
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(z2, p, mu, rstd, row_max, row_sum, out, *tables)
        return out.view(batch, heads, queries, channels)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        z2, p, mu, rstd, row_max, row_sum, out, *tables = ctx.saved_tensors
        segments = _segment_pairs(tables)
        need_z, need_p, _, *need_tables = ctx.needs_input_grad
        batch, rows, channels = z2.shape
        cp = p.shape[2]
        g = grad.reshape(batch, rows, channels)
        d = (g * out).sum(-1)  # (B, HL): sum_m P dP, as in flash attention
        za, ga = _augment(z2, cp), _augment(g, cp)  # (B, HL, C + 1)
        dz = torch.empty_like(z2) if need_z else None
        dp = torch.empty_like(p) if need_p else None
        dtables = [
            torch.zeros_like(t) if need else None
            for t, need in zip(tables, need_tables, strict=True)
        ]
        need_stats = need_p or any(need_tables)
        scores = z2.new_empty(rows, p.shape[1])  # one sample's
        probs = z2.new_empty(rows, p.shape[1])
        ds = z2.new_empty(rows, p.shape[1])
        for b in range(batch):
            pm = torch.cat([p[b], mu[b, :, None]], dim=-1)  # (M, Cp + 1), as in forward
            s = _scores(za[b], pm, segments, out=scores).mul_(rstd[b])  # recomputed
            torch.sub(s, row_max[b], out=probs).exp_().div_(row_sum[b])  # P, as in forward
            _scores(ga[b], pm, segments, out=ds)  # dR_lm = g_l . (x_m - mu_m)
            if need_stats:  # d/d rstd_m: value path sum_l P dR, key path below
                drstd = _column_dots(probs, ds)
            ds.mul_(rstd[b]).sub_(d[b, :, None]).mul_(probs)  # dS = P (dP - D), dP = rstd dR
            if need_stats:  # key path: sum_l dS_lm R_lm, R = S / rstd
                drstd += _column_dots(ds, s) / rstd[b]
            ds.mul_(rstd[b])  # dS rstd
            probs.mul_(rstd[b])  # P rstd
            if dz is not None:  # dz_l = sum_m dS_lm rstd_m (x_m - mu_m)
                dz[b] = _weighted_inputs(ds, pm, segments)
            if not need_stats:
                continue
            # x_mc's gradient: directly (through xhat's x) sum_l dS rstd z_lc + P rstd g_lc,
            # plus through mu_m (1/C each) and rstd_m (-rstd^3 (x_mc - mu_m) / C each).
            dmu = za[b, :, cp] @ ds + ga[b, :, cp] @ probs  # (M,): d/d mu_m through x - mu
            a = drstd * rstd[b].pow(3)  # (M,)
            if dp is not None:
                dpb = ds.t() @ z2[b, :, :cp]  # (M, Cp)
                dpb.addmm_(probs.t(), g[b, :, :cp])
                dpb += (dmu[:, None] - a[:, None] * (p[b] - mu[b, :, None])) / channels
                dp[b] = dpb
            start = 0
            for i, (varying, row) in enumerate(segments):
                num, width = varying.shape
                cols = slice(start, start + num)
                start += num
                dvarying, drow = dtables[2 * i], dtables[2 * i + 1]
                if dvarying is not None and width:
                    zf, gf = z2[b, :, cp : cp + width], g[b, :, cp : cp + width]
                    dvarying.addmm_(ds[:, cols].t(), zf).addmm_(probs[:, cols].t(), gf)
                    dvarying += (
                        dmu[cols, None] - a[cols, None] * (varying - mu[b, cols, None])
                    ) / channels
                if drow is not None and row.numel():
                    zr, gr = z2[b, :, cp + width :], g[b, :, cp + width :]
                    drow.addmv_(zr.t(), ds[:, cols].sum(-1)).addmv_(gr.t(), probs[:, cols].sum(-1))
                    sum_a = a[cols].sum()
                    drow += (
                        dmu[cols].sum() - row * sum_a + (a[cols] * mu[b, cols]).sum()
                    ) / channels
        dz_out = None if dz is None else dz.view(grad.shape)
        return dz_out, dp, None, *dtables


def shared_input_attention(
    q: torch.Tensor,
    inputs: SharedPositionInputs,
    norm: nn.LayerNorm,
    k_proj: nn.Linear,
    v_proj: nn.Linear,
    num_heads: int,
) -> torch.Tensor:
    """Multi-head attention of projected queries over ``norm``-ed, k/v-projected inputs.

    q: (B, N, Cqk) projected queries; inputs: per-sample (B, M, Cp) and shared (M, Cf)
    channels -> (B, N, Cv), the same as SDPA(q, k_proj(norm(x)), v_proj(norm(x))) with the
    default 1/sqrt(head width) scale, up to float rounding.
    """
    p = inputs.per_sample
    segments = as_segments(inputs.shared, p.dtype)
    channels = k_proj.in_features
    weight = norm.weight if norm.weight is not None else torch.ones_like(k_proj.weight[0])
    q = rearrange(q, "b n (h c) -> b h n c", h=num_heads)  # (B, H, N, Cqk/H)
    head_width = q.shape[-1]
    wk = (k_proj.weight * weight).view(num_heads, head_width, channels)  # Wk diag(g)
    z = torch.matmul(q, wk) * head_width**-0.5  # (B, H, N, C)
    if k_proj.bias is not None:
        # q . bk shifts a row of scores, which softmax ignores: its gradient is exactly zero;
        # keep the bias in the graph so it gets that zero, as in the ordinary path.
        z = z + 0.0 * k_proj.bias.sum()
    yc = _NormalizedInputAttention.apply(
        z, p, norm.eps, *chain.from_iterable(segments)
    )  # (B, H, N, C): sum_m P xhat_m
    wv = (v_proj.weight * weight).view(num_heads, -1, channels)  # Wv diag(g)
    o = torch.matmul(yc, wv.transpose(1, 2))  # (B, H, N, Cv/H)
    o = rearrange(o, "b h n c -> b n (h c)")
    shift = v_proj.weight @ norm.bias if norm.bias is not None else None
    if v_proj.bias is not None:
        shift = v_proj.bias if shift is None else shift + v_proj.bias
    return o if shift is None else o + shift
