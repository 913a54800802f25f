import math

import pytest
import torch

from perceiver import builders
from perceiver.config import EncoderConfig
from perceiver.modules.attention import (
    MLP,
    MultiHeadAttention,
    SelfAttentionBlock,
    SelfAttentionLayer,
)
from tests.perceiver.helpers import cross_attention


def reference_attention(mha: MultiHeadAttention, x_q, x_kv, pad_mask=None):
    """Attention written out with an explicit softmax over the score matrix."""
    h = mha.num_heads
    q, k, v = mha.q_proj(x_q), mha.k_proj(x_kv), mha.v_proj(x_kv)
    b, n, c = q.shape
    m = k.shape[1]
    q = q.view(b, n, h, c // h).transpose(1, 2)
    k = k.view(b, m, h, c // h).transpose(1, 2)
    v = v.view(b, m, h, -1).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(c // h)  # (B, H, N, M)
    if pad_mask is not None:
        scores = scores.masked_fill(pad_mask[:, None, None, :], float("-inf"))
    o = scores.softmax(-1) @ v
    return mha.o_proj(o.transpose(1, 2).reshape(b, n, -1))


def test_sdpa_matches_explicit_softmax_attention():
    torch.manual_seed(0)
    mha = MultiHeadAttention(
        num_heads=4,
        num_q_input_channels=32,
        num_kv_input_channels=20,
        num_qk_channels=16,
        num_v_channels=24,
    )
    x_q, x_kv = torch.randn(2, 5, 32), torch.randn(2, 11, 20)
    out = mha(x_q, x_kv)
    assert out.shape == (2, 5, 32)
    torch.testing.assert_close(out, reference_attention(mha, x_q, x_kv), atol=1e-5, rtol=1e-5)


def test_pad_mask_hides_padded_inputs():
    torch.manual_seed(0)
    mha = MultiHeadAttention(num_heads=2, num_q_input_channels=8, num_kv_input_channels=8)
    x_q, x_kv = torch.randn(1, 3, 8), torch.randn(1, 6, 8)
    pad = torch.tensor([[False, False, False, False, True, True]])
    masked = mha(x_q, x_kv, pad)
    torch.testing.assert_close(
        masked, reference_attention(mha, x_q, x_kv, pad), atol=1e-5, rtol=1e-5
    )
    # Changing what sits in padded positions changes nothing.
    x_kv2 = x_kv.clone()
    x_kv2[:, 4:] = 100.0
    torch.testing.assert_close(mha(x_q, x_kv2, pad), masked)


def test_bad_head_count_is_a_value_error():
    with pytest.raises(ValueError, match="num_qk_channels=10 must be divisible by num_heads=4"):
        MultiHeadAttention(num_heads=4, num_q_input_channels=10, num_kv_input_channels=10)


def test_cross_attention_without_query_residual_ignores_query_values_residually():
    torch.manual_seed(0)
    layer = cross_attention(1, 8, 8, query_residual=False)
    out = layer(torch.randn(2, 1, 8), torch.randn(2, 4, 8))
    assert out.shape == (2, 1, 8)


def test_self_attention_block_depth_and_shape():
    config = EncoderConfig(
        num_self_attention_layers_per_block=3, num_self_attention_heads=2, num_latent_channels=16
    )
    block = builders.self_attention_block(config)
    assert isinstance(block, SelfAttentionBlock)
    assert len(block) == 3
    assert block(torch.randn(2, 7, 16)).shape == (2, 7, 16)


def test_layers_take_modules_and_check_their_widths():
    attention = MultiHeadAttention(2, num_q_input_channels=8, num_kv_input_channels=6)
    layer = cross_attention(2, 8, 6)
    assert (layer.num_q_channels, layer.num_kv_channels) == (8, 6)
    with pytest.raises(ValueError, match="the MLP's width 6 must equal the query width 8"):
        type(layer)(attention, MLP(6))
    with pytest.raises(ValueError, match="one width: queries 8, keys/values 6, MLP 8"):
        SelfAttentionLayer(attention, MLP(8))
    with pytest.raises(ValueError, match="needs at least one layer"):
        SelfAttentionBlock([])
