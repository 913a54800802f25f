import pytest
import torch
from torch import nn

from perceiver import builders
from perceiver.adapters import VideoInputAdapter
from perceiver.config import CrossAttentionConfig
from perceiver.decoders import FourierQuery
from perceiver.modules.perceiver_io import PerceiverIO
from perceiver.modules.position import fourier_features, num_fourier_channels, position_grid
from tests.perceiver.helpers import encoder_around, grads


def clip(batch: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randint(0, 256, (batch, 4, 6, 8, 3), dtype=torch.uint8)  # (B, T, H, W, C)


def test_space_time_patches_and_3d_fourier():
    adapter = VideoInputAdapter((4, 6, 8, 3), patch_shape=(2, 3, 4), num_frequency_bands=3)
    assert adapter.grid_shape == (2, 2, 2)
    assert adapter.num_input_channels == 2 * 3 * 4 * 3 + num_fourier_channels(3, 3)
    x = clip()
    out = adapter(x)
    assert out.shape == (2, 8, adapter.num_input_channels)
    # position 5 = (time 1, row 0, column 1): frames 2..3, rows 0..2, columns 4..7
    expected = (x[1, 2:4, 0:3, 4:8, :].float() / 255.0).reshape(-1)
    torch.testing.assert_close(out[1, 5, :72], expected)
    torch.testing.assert_close(
        out[0, :, 72:], fourier_features(position_grid((2, 2, 2)), 3, (2, 2, 2))
    )
    # uint8 and [0, 1] floats agree
    torch.testing.assert_close(adapter(x.float() / 255.0), out)


def test_mean_std_normalisation():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    adapter = VideoInputAdapter((4, 6, 8, 3), (1, 1, 1), 2, mean=mean, std=std)
    x = clip(1)
    out = adapter(x)  # one position per pixel
    expected = ((x.float() / 255.0 - torch.tensor(mean)) / torch.tensor(std)).reshape(1, -1, 3)
    torch.testing.assert_close(out[..., :3], expected)
    assert not adapter.state_dict()  # buffers are not checkpointed


def test_bad_arguments_are_value_errors():
    with pytest.raises(
        ValueError, match=r"patch_shape=\(3, 3, 4\) must divide \(T, H, W\)=\(4, 6, 8\)"
    ):
        VideoInputAdapter((4, 6, 8, 3), (3, 3, 4), 2)
    with pytest.raises(ValueError, match="video_shape must be positive"):
        VideoInputAdapter((4, 6, 8), (1, 1, 1), 2)
    with pytest.raises(ValueError, match="patch_shape must be positive"):
        VideoInputAdapter((4, 6, 8, 3), (1, 0, 1), 2)
    with pytest.raises(ValueError, match="give both mean and std or neither"):
        VideoInputAdapter((4, 6, 8, 3), (1, 1, 1), 2, mean=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match=r"expected clips of shape \(B, 4, 6, 8, 3\)"):
        VideoInputAdapter((4, 6, 8, 3), (1, 1, 1), 2)(torch.zeros(1, 4, 6, 8, 1))


def test_video_autoencoder_forward_backward():
    """Adapter -> encoder -> basic decoder with one query per patch (a tiny autoencoder)."""
    torch.manual_seed(0)
    adapter = VideoInputAdapter((4, 6, 8, 3), (2, 3, 4), 2)
    encoder = encoder_around(
        adapter, num_latents=4, num_latent_channels=16, num_self_attention_heads=2
    )
    query = FourierQuery(adapter.grid_shape, 2)
    head = nn.Linear(query.num_channels, 2 * 3 * 4 * 3)
    spec = CrossAttentionConfig(query_residual=False)
    decoder = builders.decoder(spec, query, 16, head, chunk_size=3)
    model = PerceiverIO(encoder, decoder)
    out = model(clip())
    assert out.shape == (2, 8, 72)
    out.square().mean().backward()
    grads(model)
