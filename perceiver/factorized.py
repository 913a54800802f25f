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
  (C, M)-sized products forward (scores, attended inputs) and two backward (score and query
  gradients), against ``[p, mu, f]`` assembled one sample at a time.

``_NormalizedInputAttention`` is the core (``softmax(Z xhat^T) xhat`` with queries Z in input
space) as an autograd function: it stores the probabilities (B, H, L, M) and the small
inputs, not the keys/values or normalised inputs, and builds gradients with respect to
``p``/``f`` only when they require them (pixels and Fourier features do not). Each head
scores and attends over all C input channels, so scores plus attended inputs cost
2 * H * L * M * C multiply-adds where the ordinary path's projections, scores and attended
values cost (C + L) * M * (Ck + Cv); it is used only when it costs no more
(``input_space_pays``), and ``CrossAttentionLayer`` falls back to the ordinary path
otherwise, with pad masks, and with active attention dropout.
"""

from __future__ import annotations

from typing import Any

import torch
from einops import rearrange
from torch import nn
from torch.autograd.function import once_differentiable

from perceiver.adapters.base import SharedPositionInputs


def layer_norm_stats(
    per_sample: torch.Tensor, shared: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """LayerNorm mean and 1/std of ``[per_sample | shared]`` without concatenating them.

    per_sample: (B, M, Cp), shared: (M, Cf) -> mu, rstd: (B, M). The variance adds
    non-negative parts, sum_p (p - mu)^2 + sum_f (f - mean f)^2 + Cf (mean f - mu)^2, combined
    in float64, so it does not cancel (as E[x^2] - mu^2 would with a large mean).
    """
    cp, cf = per_sample.shape[-1], shared.shape[-1]
    shared_mean = shared.mean(-1, keepdim=True)  # (M, 1)
    shared_sq = (shared - shared_mean).square().sum(-1).double()  # (M,)
    shared_mean = shared_mean.squeeze(-1).double()
    p = per_sample.double()
    mu = (p.sum(-1) + cf * shared_mean) / (cp + cf)  # (B, M)
    sq = (p - mu.unsqueeze(-1)).square().sum(-1) + shared_sq + cf * (shared_mean - mu).square()
    rstd = (sq / (cp + cf) + eps).rsqrt()  # biased variance, as LayerNorm
    return mu.to(per_sample.dtype), rstd.to(per_sample.dtype)


def input_space_pays(
    num_heads: int, num_queries: int, num_input_channels: int, qk: int, v: int
) -> bool:
    """Whether scoring/attending in the input space costs no more multiply-adds per input
    position than projecting keys/values and scoring/attending over them."""
    return 2 * num_heads * num_queries * num_input_channels <= (
        num_input_channels + num_queries
    ) * (qk + v)


class _NormalizedInputAttention(torch.autograd.Function):
    """yc = softmax(Z xhat^T) xhat per sample and head, xhat = ([p | f] - mu) * rstd.

    Z: (B, H, L, C) queries in input space (already scaled), p: (B, M, Cp), f: (M, Cf),
    mu, rstd: (B, M) -> (B, H, L, C). Samples are processed one at a time, so the only
    (H*L, M) temporaries are one sample's; the probabilities of all samples are kept for
    backward (when anything requires a gradient).
    """

    @staticmethod
    def forward(
        ctx: Any,
        z: torch.Tensor,
        p: torch.Tensor,
        f: torch.Tensor,
        mu: torch.Tensor,
        rstd: torch.Tensor,
    ) -> torch.Tensor:
        batch, heads, queries, channels = z.shape
        num_positions, cp = p.shape[1], p.shape[2]
        rows = heads * queries
        z2 = z.reshape(batch, rows, channels)
        # One product per sample against xa = [p, mu, f] (M, Cp + 1 + Cf), built one sample
        # at a time: z . x_m - mu_m * sum(z) is za . xa_m with za = [z_p, -sum(z), z_f].
        za = torch.cat([z2[..., :cp], -z2.sum(-1, keepdim=True), z2[..., cp:]], dim=-1)
        pm = torch.cat([p, mu.unsqueeze(-1)], dim=-1)  # (B, M, Cp + 1)
        save = any(ctx.needs_input_grad)
        probs = z.new_empty(batch if save else 1, rows, num_positions)
        out = z.new_empty(batch, rows, channels)
        for b in range(batch):
            xa = torch.cat([pm[b], f], dim=-1)  # (M, Cp + 1 + Cf)
            s = probs[b if save else 0]  # (HL, M)
            torch.mm(za[b], xa.t(), out=s)
            s.mul_(rstd[b])  # scores z . xhat_m
            s.sub_(s.amax(-1, keepdim=True)).exp_()
            s.div_(s.sum(-1, keepdim=True))  # softmax over positions
            y = (s * rstd[b]) @ xa  # (HL, Cp + 1 + Cf): sum_m P_lm rstd_m [p_m, mu_m, f_m]
            ymu = y[:, cp : cp + 1]
            out[b, :, :cp] = y[:, :cp] - ymu
            out[b, :, cp:] = y[:, cp + 1 :] - ymu
            del xa, y
        if save:
            ctx.save_for_backward(z2, p, f, mu, rstd, probs, out, pm)
        return out.view(batch, heads, queries, channels)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        z2, p, f, mu, rstd, probs, out, pm = ctx.saved_tensors
        need_z, need_p, need_f, need_mu, need_rstd = ctx.needs_input_grad
        need_x = need_p or need_f or need_mu or need_rstd
        batch, rows, channels = z2.shape
        cp, cf = p.shape[2], f.shape[1]
        g = grad.reshape(batch, rows, channels)
        d = (g * out).sum(-1, keepdim=True)  # (B, HL, 1): sum_m P dP, as in flash attention
        ga = torch.cat([g[..., :cp], -g.sum(-1, keepdim=True), g[..., cp:]], dim=-1)
        dz = torch.empty_like(z2) if need_z else None
        dp = torch.empty_like(p) if need_p else None
        df = torch.zeros_like(f) if need_f else None
        dmu = torch.empty_like(mu) if need_mu else None
        drstd = torch.empty_like(rstd) if need_rstd else None
        ds = z2.new_empty(rows, probs.shape[-1])
        for b in range(batch):
            xa = torch.cat([pm[b], f], dim=-1)  # (M, Cp + 1 + Cf), as in forward
            torch.mm(ga[b], xa.t(), out=ds)  # dR_lm = g_l . (x_m - mu_m)
            ds.mul_(rstd[b]).sub_(d[b]).mul_(probs[b])  # dS = P (dP - D), dP = rstd dR
            if need_x:
                dxh = ds.t() @ z2[b]  # (M, C): key path
                dxh.addmm_(probs[b].t(), g[b])  # + value path
                if dp is not None:
                    dp[b] = dxh[:, :cp] * rstd[b, :, None]
                if df is not None:
                    df.addcmul_(dxh[:, cp:], rstd[b, :, None])
                dsum = dxh.sum(-1)  # (M,)
                if dmu is not None:
                    dmu[b] = -rstd[b] * dsum
                if drstd is not None:
                    dot = (dxh[:, :cp] * p[b]).sum(-1) - mu[b] * dsum
                    if cf:
                        dot += (dxh[:, cp:] * f).sum(-1)
                    drstd[b] = dot
                del dxh
            if dz is not None:
                t = ds.mul_(rstd[b]) @ xa  # dz_l = sum_m dS_lm rstd_m (x_m - mu_m)
                tmu = t[:, cp : cp + 1]
                dz[b, :, :cp] = t[:, :cp] - tmu
                dz[b, :, cp:] = t[:, cp + 1 :] - tmu
            del xa
        dz_out = None if dz is None else dz.view(grad.shape)
        return dz_out, dp, df, dmu, drstd


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
    f = inputs.shared.to(p.dtype)
    channels = p.shape[-1] + f.shape[-1]
    weight = norm.weight if norm.weight is not None else torch.ones_like(k_proj.weight[0])
    q = rearrange(q, "b n (h c) -> b h n c", h=num_heads)  # (B, H, N, Cqk/H)
    head_width = q.shape[-1]
    wk = (k_proj.weight * weight).view(num_heads, head_width, channels)  # Wk diag(g)
    z = torch.matmul(q, wk) * head_width**-0.5  # (B, H, N, C)
    if k_proj.bias is not None:
        # q . bk shifts a row of scores, which softmax ignores: its gradient is exactly zero;
        # keep the bias in the graph so it gets that zero, as in the ordinary path.
        z = z + 0.0 * k_proj.bias.sum()
    mu, rstd = layer_norm_stats(p, f, norm.eps)
    yc = _NormalizedInputAttention.apply(z, p, f, mu, rstd)  # (B, H, N, C): sum_m P xhat_m
    wv = (v_proj.weight * weight).view(num_heads, -1, channels)  # Wv diag(g)
    o = torch.matmul(yc, wv.transpose(1, 2))  # (B, H, N, Cv/H)
    o = rearrange(o, "b h n c -> b n (h c)")
    shift = v_proj.weight @ norm.bias if norm.bias is not None else None
    if v_proj.bias is not None:
        shift = v_proj.bias if shift is None else shift + v_proj.bias
    return o if shift is None else o + shift
