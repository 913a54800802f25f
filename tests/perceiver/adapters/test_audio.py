import pytest
import torch

from perceiver.adapters import AudioInputAdapter
from perceiver.modules.position import fourier_features, num_fourier_channels, position_grid
from tests.perceiver.helpers import classifier_around, grads


def test_mono_waveform_shapes_and_patch_contents():
    adapter = AudioInputAdapter(num_samples=96, samples_per_patch=8, num_frequency_bands=5)
    assert adapter.num_patches == 12
    assert adapter.num_input_channels == 8 + num_fourier_channels(1, 5)
    torch.manual_seed(0)
    x = torch.randn(2, 96)
    out = adapter(x)
    assert out.shape == (2, 12, adapter.num_input_channels)
    torch.testing.assert_close(out[1, 3, :8], x[1, 24:32])  # patch 3 = samples 24..31
    expected_pos = fourier_features(position_grid((12,)), 5, (12,))
    torch.testing.assert_close(out[0, :, 8:], expected_pos)
    # (B, T) and (B, T, 1) are the same mono input
    torch.testing.assert_close(adapter(x[..., None]), out)


def test_stereo_patches_interleave_samples_and_channels():
    adapter = AudioInputAdapter(12, 3, 2, num_audio_channels=2)
    x = torch.arange(2 * 12 * 2, dtype=torch.float32).view(2, 12, 2)
    out = adapter(x)
    assert out.shape == (2, 4, 3 * 2 + num_fourier_channels(1, 2))
    torch.testing.assert_close(out[0, 1, :6], x[0, 3:6].reshape(-1))  # (s, c) order
    with pytest.raises(ValueError, match=r"expected audio of shape \(B, 12, 2\), got \(2, 12\)"):
        adapter(torch.zeros(2, 12))


def test_int16_pcm_is_scaled():
    adapter = AudioInputAdapter(4, 2, 1)
    pcm = torch.tensor([[-32768, 0, 16384, 32767]], dtype=torch.int16)
    torch.testing.assert_close(
        adapter(pcm)[0, :, :2], torch.tensor([[-1.0, 0.0], [0.5, 32767 / 32768]])
    )
    with pytest.raises(ValueError, match=r"int16 or floating-point audio, got dtype torch\.int64"):
        adapter(pcm.long())


def test_bad_arguments_are_value_errors():
    with pytest.raises(
        ValueError, match="samples_per_patch=7 must be >= 1 and divide num_samples=96"
    ):
        AudioInputAdapter(96, 7, 4)
    with pytest.raises(ValueError, match="num_samples=0"):
        AudioInputAdapter(0, 1, 4)
    with pytest.raises(ValueError, match=r"expected audio of shape \(B, 96, 1\) or \(B, 96\)"):
        AudioInputAdapter(96, 8, 4)(torch.zeros(1, 95))


def test_audio_classifier_forward_backward():
    torch.manual_seed(0)
    adapter = AudioInputAdapter(num_samples=192, samples_per_patch=16, num_frequency_bands=4)
    model = classifier_around(
        adapter, 3, num_latents=4, num_latent_channels=16, num_self_attention_heads=2
    )
    logits = model(torch.randn(2, 192))
    assert logits.shape == (2, 3)
    logits.sum().backward()
    grads(model)
