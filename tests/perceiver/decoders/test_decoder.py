"""The one decoder: injected queries cross-attend to the latents, an injected head reads out."""

import pytest
import torch
from torch import nn

from perceiver import builders
from perceiver.config import ClassificationDecoderConfig, CrossAttentionConfig
from perceiver.decoders import (
    ClassificationHead,
    FourierQuery,
    GridHead,
    InputQuery,
    OutputQuery,
    PerceiverDecoder,
    TrainableQuery,
)
from perceiver.modules.inputs import SharedPositionInputs
from perceiver.modules.position import num_fourier_channels
from tests.perceiver.helpers import grads

NO_RESIDUAL = CrossAttentionConfig(query_residual=False)


def make_decoder(query: OutputQuery, num_output_channels: int = 3, **spec) -> PerceiverDecoder:
    torch.manual_seed(0)
    head = nn.Linear(query.num_channels, num_output_channels)
    config = CrossAttentionConfig(**{"query_residual": False, **spec})
    return builders.decoder(config, query, 16, head)


QUERIES = {
    "fourier": (lambda: FourierQuery((4, 5), 3), num_fourier_channels(2, 3)),
    "fourier+projection": (
        lambda: FourierQuery((4, 5), 3, num_projection_channels=6),
        num_fourier_channels(2, 3) + 6,
    ),
    "trainable": (lambda: TrainableQuery(20, 16), 16),
    "trainable narrow": (lambda: TrainableQuery(20, 10), 10),
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_shapes_and_backward(name):
    make_query, query_channels = QUERIES[name]
    decoder = make_decoder(make_query())
    assert decoder.output_query.num_channels == query_channels
    assert decoder.output_query(2).shape == (2, 20, query_channels)
    latents = torch.randn(2, 7, 16, requires_grad=True)
    out = decoder(latents)
    assert out.shape == (2, 20, 3)
    out.square().sum().backward()
    grads(decoder)  # every parameter got a gradient
    assert latents.grad is not None


def test_fourier_query_is_position_code_plus_learned_projection():
    query = FourierQuery((4, 5), 3, num_projection_channels=4)
    q = query(1)[0]  # (20, P + 4)
    fourier = query.features(None)  # (20, P)
    assert query.projection is not None
    torch.testing.assert_close(q[:, : fourier.shape[1]], fourier)
    torch.testing.assert_close(q[:, fourier.shape[1] :], query.projection(fourier))
    assert set(query.state_dict()) == {"projection.weight", "projection.bias"}  # fixed codes


def test_subsampled_queries_are_rows_of_the_whole():
    """Trainable: row i; Fourier: DeepMind's subsampled coordinates -1 + 2 i / n."""
    trainable = TrainableQuery(20, 6)
    idx = torch.tensor([3, 0, 19])
    torch.testing.assert_close(trainable(2, indices=idx)[1], trainable.table[idx])
    fourier = FourierQuery((4, 5), 2)
    sub = fourier(1, indices=torch.tensor([0, 7]))[0]  # (2, C)
    assert sub.shape == (2, fourier.num_channels)
    torch.testing.assert_close(sub[:, :2], torch.tensor([[-1.0, -1.0], [-1 + 2 * 1 / 4, -0.2]]))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 20\), got values from 0 to 20"):
        fourier(1, indices=torch.tensor([0, 20]))


def test_input_query_decodes_one_output_per_input():
    inputs = torch.randn(2, 6, 5)
    query = InputQuery(5)
    torch.testing.assert_close(query(2, inputs), inputs)
    split = SharedPositionInputs(inputs[..., :3], inputs[0, :, 3:])
    torch.testing.assert_close(query(2, split)[0], inputs[0])
    decoder = builders.decoder(NO_RESIDUAL, query, 16, GridHead(5, 2, (2, 3), scale=0.5))
    assert decoder(torch.randn(2, 4, 16), inputs).shape == (2, 2, 3, 2)
    with pytest.raises(ValueError, match="decodes from the encoder's inputs; none were given"):
        decoder(torch.randn(2, 4, 16))
    with pytest.raises(ValueError, match=r"expected inputs of shape \(B, M, 5\)"):
        query(2, torch.randn(2, 6, 4))


def test_classification_head_takes_the_one_query():
    decoder = builders.classification_decoder(ClassificationDecoderConfig(), 4, 16)
    assert isinstance(decoder.head, ClassificationHead)
    assert set(decoder.state_dict()) >= {"output_query.table", "head.weight", "head.bias"}
    assert decoder(torch.randn(3, 5, 16)).shape == (3, 4)
    with pytest.raises(ValueError, match=r"one query per sample \(B, 1, C\), got \(3, 2, 16\)"):
        decoder.head(torch.randn(3, 2, 16))


def test_one_dimensional_outputs():
    decoder = make_decoder(FourierQuery((9,), 3), num_output_channels=5)
    assert decoder(torch.randn(3, 4, 16)).shape == (3, 9, 5)


@pytest.mark.parametrize("name", ["fourier", "trainable"])
def test_chunked_decoder_equals_unchunked(name):
    query = FourierQuery((6, 7), 3) if name == "fourier" else TrainableQuery(42, 16)
    decoder = make_decoder(query).eval()
    latents = torch.randn(2, 5, 16)
    expected = decoder(latents)
    for chunk_size in (1, 5, 41, 42, 1000):
        decoder.chunk_size = chunk_size
        torch.testing.assert_close(decoder(latents), expected, atol=1e-6, rtol=0)
    spec = CrossAttentionConfig(query_residual=False)
    head = nn.Linear(query.num_channels, 3)
    assert builders.decoder(spec, query, 16, head, chunk_size=8).chunk_size == 8


def test_query_residual_is_configurable():
    without = make_decoder(FourierQuery((4, 5), 3))
    with_res = make_decoder(FourierQuery((4, 5), 3), query_residual=True)
    assert not without.cross_attention.query_residual
    assert with_res.cross_attention.query_residual
    latents = torch.randn(1, 5, 16)
    # Same weights (same seed), so the difference is exactly the query residual path.
    assert not torch.allclose(without(latents), with_res(latents))


def test_bad_arguments_are_value_errors():
    with pytest.raises(
        ValueError, match=r"index_shape must be non-empty and positive, got \(4, 0\)"
    ):
        FourierQuery((4, 0), 3)
    with pytest.raises(ValueError, match="num_outputs=0 and num_channels=4 must be >= 1"):
        TrainableQuery(0, 4)
    with pytest.raises(ValueError, match="chunk_size must be None or >= 1, got 0"):
        builders.decoder(NO_RESIDUAL, TrainableQuery(3, 16), 16, nn.Identity(), chunk_size=0)
    query = TrainableQuery(3, 8)
    layer = builders.cross_attention_layer(NO_RESIDUAL, 16, 16)
    with pytest.raises(ValueError, match="takes 16-channel queries, its output query gives 8"):
        PerceiverDecoder(query, layer, nn.Identity())
    with pytest.raises(ValueError, match=r"grid_shape must be non-empty and positive"):
        GridHead(4, 2, ())


def test_two_hundred_thousand_queries_in_chunks():
    torch.manual_seed(0)
    query = FourierQuery((400, 500), 1)
    head = nn.Linear(query.num_channels, 2)
    decoder = builders.decoder(NO_RESIDUAL, query, 8, head, chunk_size=65_536).eval()
    latents = torch.randn(1, 4, 8)
    with torch.no_grad():
        chunked = decoder(latents)
        decoder.chunk_size = None
        whole = decoder(latents)
    assert chunked.shape == (1, 200_000, 2)
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)
