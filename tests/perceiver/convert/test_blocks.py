"""The blocks and options added for converting Hugging Face models, tested on their own."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

from perceiver import builders
from perceiver.adapters import ConvImageInputAdapter, ImageInputAdapter, TextInputAdapter
from perceiver.adapters.image import grid_position_encoding
from perceiver.config import CrossAttentionConfig
from perceiver.decoders import TiedEmbeddingHead, TrainableQuery
from perceiver.modules.perceiver_io import TextPerceiverIO
from perceiver.modules.position import (
    FourierPositionEncoding,
    ProjectedPositionEncoding,
    TrainablePositionEncoding,
)
from tests.perceiver.helpers import IdentityAdapter, encoder_around


def test_projected_position_encoding_is_a_linear_map_of_the_table():
    torch.manual_seed(0)
    inner = TrainablePositionEncoding(6, 4)
    enc = ProjectedPositionEncoding(inner, 5)
    assert (enc.num_positions, enc.num_channels) == (6, 5)
    out = enc(3)  # (3, 6, 5)
    assert out.shape == (3, 6, 5)
    torch.testing.assert_close(out[2], enc.projection(inner.table))
    with pytest.raises(ValueError, match="num_output_channels must be >= 1, got 0"):
        ProjectedPositionEncoding(inner, 0)


def test_grid_position_encoding_takes_bands_or_an_encoding_of_matching_size():
    fourier = grid_position_encoding((4, 5), 3, max_resolution=(8, 8))
    assert isinstance(fourier, FourierPositionEncoding) and fourier.num_positions == 20
    injected = TrainablePositionEncoding(20, 7)
    assert grid_position_encoding((4, 5), None, position_encoding=injected) is injected
    with pytest.raises(ValueError, match="got neither"):
        grid_position_encoding((4, 5), None)
    with pytest.raises(ValueError, match="num_frequency_bands=3"):
        grid_position_encoding((4, 5), 3, position_encoding=injected)
    with pytest.raises(ValueError, match="has 21 positions"):
        grid_position_encoding((4, 5), None, position_encoding=TrainablePositionEncoding(21, 7))


def test_channels_first_unnormalised_adapter_takes_images_as_they_are():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 6)  # (B, C, H, W), not in [0, 1]
    adapter = ImageInputAdapter((8, 6, 3), 2, mean=None, std=None, channels_first=True)
    out = adapter(x)
    torch.testing.assert_close(out[..., :3], rearrange(x, "b c h w -> b (h w) c"))
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 3, 8, 6\)"):
        adapter(rearrange(x, "b c h w -> b h w c"))
    with pytest.raises(ValueError, match="give both mean and std or neither"):
        ImageInputAdapter((8, 6, 3), 2, std=None)


def test_fourier_max_resolution_reaches_the_adapter():
    adapter = ImageInputAdapter((8, 6, 3), 4, max_resolution=(224, 224))
    expected = FourierPositionEncoding((8, 6), 4, (224, 224))
    torch.testing.assert_close(adapter.position_encoding(1), expected(1))


def test_conv_adapter_pool_padding():
    assert ConvImageInputAdapter((32, 32, 3), 2).grid_shape == (8, 8)
    unpadded = ConvImageInputAdapter((32, 30, 3), 2, pool_padding=0)
    assert unpadded.grid_shape == (7, 7)  # conv: 16 x 15, pool 3x3/2 without padding: 7 x 7
    assert unpadded(torch.rand(2, 32, 30, 3)).shape == (2, 49, unpadded.num_input_channels)
    with pytest.raises(ValueError, match="pool_padding must be 0 or 1, got 2"):
        ConvImageInputAdapter((32, 32, 3), 2, pool_padding=2)
    with pytest.raises(ValueError, match="too small"):
        ConvImageInputAdapter((4, 4, 3), 2, pool_padding=0)


def test_text_adapter_adds_the_first_positions():
    torch.manual_seed(0)
    adapter = TextInputAdapter(vocab_size=10, max_seq_len=8, num_channels=4)
    ids = torch.tensor([[1, 2, 3], [4, 5, 9]])
    out = adapter(ids)  # (2, 3, 4)
    expected = adapter.token_embedding.weight[ids] + adapter.position_encoding.table[:3]
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="exceeds max_seq_len=8"):
        adapter(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="integer token ids"):
        adapter(torch.zeros(1, 3))


def test_tied_head_shares_the_embedding_and_its_gradient():
    torch.manual_seed(0)
    adapter = TextInputAdapter(10, 8, 4)
    head = TiedEmbeddingHead(adapter.token_embedding)
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(head(x), x @ adapter.token_embedding.weight.T + head.bias)
    head(adapter(torch.tensor([[1, 2]]))).sum().backward()
    assert adapter.token_embedding.weight.grad is not None
    with pytest.raises(ValueError, match="expected 4 channels"):
        head(torch.randn(2, 3, 5))


def test_decoder_takes_an_injected_head():
    head = torch.nn.Linear(6, 3, bias=False)
    decoder = builders.decoder(CrossAttentionConfig(), TrainableQuery(5, 6), 8, head)
    assert decoder.head is head
    assert decoder(torch.randn(2, 4, 8)).shape == (2, 5, 3)


def test_encoder_options_keep_defaults_and_change_only_what_they_name():
    default = encoder_around(IdentityAdapter(6), num_latents=4, num_latent_channels=8)
    wide = encoder_around(
        IdentityAdapter(6),
        num_latents=4,
        num_latent_channels=8,
        num_self_attention_qk_channels=16,
        query_residual=False,
    )
    assert list(default.state_dict()) == list(wide.state_dict())
    assert default.cross_attention.query_residual and not wide.cross_attention.query_residual
    assert wide.self_attention[0].attention.q_proj.out_features == 16
    assert wide.self_attention[0].attention.v_proj.out_features == 16  # v defaults to qk
    assert wide(torch.randn(2, 5, 6)).shape == (2, 4, 8)


def test_text_model_takes_either_mask_convention():
    torch.manual_seed(0)
    adapter = TextInputAdapter(10, 8, 8)
    encoder = encoder_around(adapter, num_latents=4, num_latent_channels=8)
    head = torch.nn.Linear(8, 2)
    decoder = builders.decoder(CrossAttentionConfig(), TrainableQuery(3, 8), 8, head)
    model = TextPerceiverIO(encoder, decoder).eval()
    ids = torch.randint(0, 10, (2, 6))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1] * 6])
    torch.testing.assert_close(model(ids, attention_mask=mask), model(ids, mask == 0))
