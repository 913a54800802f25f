import copy

import pytest
import torch

from perceiver.attention import CrossAttentionLayer
from tests.perceiver.helpers import grads


def make_layer(**kwargs) -> CrossAttentionLayer:
    torch.manual_seed(0)
    return CrossAttentionLayer(
        num_heads=2, num_q_input_channels=8, num_kv_input_channels=6, widening_factor=2, **kwargs
    )


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 16, 100])
@pytest.mark.parametrize("query_residual", [True, False])
def test_chunked_equals_unchunked(chunk_size, query_residual):
    layer = make_layer(query_residual=query_residual).eval()
    torch.manual_seed(1)
    x_q, x_kv = torch.randn(2, 16, 8), torch.randn(2, 5, 6)
    pad = torch.tensor([[False] * 5, [False, False, False, True, True]])
    expected = layer(x_q, x_kv, pad)
    layer.chunk_size = chunk_size
    torch.testing.assert_close(layer(x_q, x_kv, pad), expected, atol=1e-6, rtol=0)


def test_chunked_gradients_equal_unchunked():
    plain = make_layer()
    chunked = copy.deepcopy(plain)
    chunked.chunk_size = 3
    torch.manual_seed(1)
    x_q, x_kv = torch.randn(2, 10, 8), torch.randn(2, 5, 6)
    outs, all_grads = [], []
    for layer in (plain, chunked):
        q, kv = x_q.clone().requires_grad_(), x_kv.clone().requires_grad_()
        out = layer(q, kv)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        outs.append(out.detach())
        all_grads.append({**grads(layer), "x_q": q.grad, "x_kv": kv.grad})
    torch.testing.assert_close(outs[1], outs[0], atol=1e-6, rtol=0)
    for name, g in all_grads[0].items():
        torch.testing.assert_close(all_grads[1][name], g, atol=1e-6, rtol=0, msg=name)


def test_chunks_bound_the_queries_per_attention_call():
    layer = make_layer(chunk_size=4)
    sizes: list[int] = []
    original = layer.attention.attend

    def spy(x_q, *rest):
        sizes.append(x_q.shape[1])
        return original(x_q, *rest)

    layer.attention.attend = spy  # type: ignore[method-assign]
    out = layer(torch.randn(1, 10, 8), torch.randn(1, 3, 6))
    assert out.shape == (1, 10, 8)
    assert sizes == [4, 4, 2]


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_chunk_size_is_a_value_error(bad):
    with pytest.raises(ValueError, match=f"chunk_size must be None or >= 1, got {bad}"):
        make_layer(chunk_size=bad)
    layer = make_layer()
    with pytest.raises(ValueError, match="chunk_size"):
        layer.chunk_size = bad
