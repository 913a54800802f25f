import pytest
import torch

from perceiver.decoders import BasicDecoder
from perceiver.position import num_fourier_channels
from tests.perceiver.helpers import grads


def make_decoder(**kwargs) -> BasicDecoder:
    torch.manual_seed(0)
    args = dict(num_output_channels=3, num_latent_channels=16, output_index_shape=(4, 5))
    args.update(kwargs)
    return BasicDecoder(num_frequency_bands=3, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "query_channels"),
    [
        (dict(query_type="fourier"), num_fourier_channels(2, 3)),
        (
            dict(query_type="fourier", num_query_projection_channels=6),
            num_fourier_channels(2, 3) + 6,
        ),
        (dict(query_type="trainable"), 16),
        (dict(query_type="trainable", num_output_query_channels=10), 10),
    ],
)
def test_shapes_and_backward(kwargs, query_channels):
    decoder = make_decoder(**kwargs)
    assert decoder.num_outputs == 20
    assert decoder.num_query_channels == query_channels
    assert decoder.output_queries(2).shape == (2, 20, query_channels)
    latents = torch.randn(2, 7, 16, requires_grad=True)
    out = decoder(latents)
    assert out.shape == (2, 20, 3)
    out.square().sum().backward()
    grads(decoder)  # every parameter got a gradient
    assert latents.grad is not None


def test_fourier_query_is_position_code_plus_learned_projection():
    decoder = make_decoder(num_query_projection_channels=4)
    q = decoder.output_queries(1)[0]  # (20, P + 4)
    fourier = decoder.output_query.table  # (20, P)
    assert decoder.query_projection is not None
    torch.testing.assert_close(q[:, : fourier.shape[1]], fourier)
    torch.testing.assert_close(q[:, fourier.shape[1] :], decoder.query_projection(fourier))
    assert "output_query.table" not in decoder.state_dict()  # fixed, recomputed


def test_one_dimensional_outputs():
    decoder = make_decoder(output_index_shape=(9,), num_output_channels=5)
    assert decoder(torch.randn(3, 4, 16)).shape == (3, 9, 5)


@pytest.mark.parametrize("query_type", ["fourier", "trainable"])
def test_chunked_decoder_equals_unchunked(query_type):
    decoder = make_decoder(query_type=query_type, output_index_shape=(6, 7)).eval()
    latents = torch.randn(2, 5, 16)
    expected = decoder(latents)
    for chunk_size in (1, 5, 41, 42, 1000):
        decoder.chunk_size = chunk_size
        torch.testing.assert_close(decoder(latents), expected, atol=1e-6, rtol=0)
    assert make_decoder(chunk_size=8).cross_attention.chunk_size == 8


def test_query_residual_is_configurable():
    without = make_decoder()
    with_res = make_decoder(query_residual=True)
    assert not without.cross_attention.query_residual
    assert with_res.cross_attention.query_residual
    latents = torch.randn(1, 5, 16)
    # Same weights (same seed), so the difference is exactly the query residual path.
    assert not torch.allclose(without(latents), with_res(latents))


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="query_type must be 'fourier' or 'trainable', got 'x'"):
        make_decoder(query_type="x")
    with pytest.raises(ValueError, match="num_output_query_channels=8 only applies"):
        make_decoder(num_output_query_channels=8)
    with pytest.raises(ValueError, match="num_query_projection_channels=8 only applies"):
        make_decoder(query_type="trainable", num_query_projection_channels=8)
    with pytest.raises(ValueError, match=r"output_index_shape .* got \(4, 0\)"):
        make_decoder(output_index_shape=(4, 0))
    with pytest.raises(ValueError, match="num_output_channels must be >= 1, got 0"):
        make_decoder(num_output_channels=0)
    with pytest.raises(ValueError, match="chunk_size must be None or >= 1, got 0"):
        make_decoder(chunk_size=0)


def test_two_hundred_thousand_queries_in_chunks():
    torch.manual_seed(0)
    decoder = BasicDecoder(
        num_output_channels=2,
        num_latent_channels=8,
        output_index_shape=(400, 500),
        num_frequency_bands=1,
        chunk_size=65_536,
    ).eval()
    latents = torch.randn(1, 4, 8)
    with torch.no_grad():
        chunked = decoder(latents)
        decoder.chunk_size = None
        whole = decoder(latents)
    assert chunked.shape == (1, 200_000, 2)
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)
