import math

import pytest
import torch

from perceiver.modules.position import (
    FourierPositionEncoding,
    TrainablePositionEncoding,
    fourier_features,
    num_fourier_channels,
    position_grid,
)


def test_position_grid_spans_minus_one_to_one_row_major():
    grid = position_grid((3, 4))  # (12, 2)
    assert grid.shape == (12, 2)
    assert grid[0].tolist() == [-1.0, -1.0]
    assert grid[-1].tolist() == [1.0, 1.0]
    assert grid[1].tolist() == pytest.approx([-1.0, -1.0 + 2 / 3])  # second axis varies fastest


def test_imagenet_fourier_channels_match_the_paper():
    # 224x224 with 64 bands: 2 + 2*2*64 = 258 position channels, + RGB = 261.
    assert num_fourier_channels(2, 64) == 258
    enc = FourierPositionEncoding((224, 224), 64)
    assert enc(2).shape == (2, 224 * 224, 258)


def test_fourier_values_follow_the_formula():
    pos = torch.tensor([[0.5]])
    feats = fourier_features(pos, num_bands=3, max_resolution=[8])  # freqs 1, 2.5, 4
    freqs = torch.tensor([1.0, 2.5, 4.0])
    expected = torch.cat(
        [pos[0], torch.sin(math.pi * 0.5 * freqs), torch.cos(math.pi * 0.5 * freqs)]
    )
    torch.testing.assert_close(feats[0], expected)
    assert fourier_features(pos, 3, [8], concat_pos=False, sine_only=True).shape == (1, 3)


def test_fourier_rejects_mismatched_resolution():
    with pytest.raises(ValueError, match="max_resolution"):
        fourier_features(torch.zeros(4, 2), 4, [8])


def test_fourier_table_is_not_in_the_state_dict():
    assert "table" not in FourierPositionEncoding((4, 4), 2).state_dict()


def test_trainable_encoding_is_a_parameter():
    enc = TrainablePositionEncoding(5, 8)
    assert enc(3).shape == (3, 5, 8)
    assert [n for n, _ in enc.named_parameters()] == ["table"]
