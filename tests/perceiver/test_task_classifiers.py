"""Audio, video and point-cloud classifiers: shapes, training step, portable round trip."""

from __future__ import annotations

import io

import pytest
import torch
from pydantic import ValidationError

from perceiver.adapters.point_cloud import PointCloudInputAdapter
from perceiver.builders import audio_classifier, point_cloud_classifier, video_classifier
from perceiver.config import (
    AudioClassifierConfig,
    PointCloudClassifierConfig,
    VideoClassifierConfig,
)
from perceiver.modules.perceiver_io import PerceiverIO
from perceiver.modules.position import fourier_features
from perceiver.portable import PortableModel
from tests.perceiver.helpers import grads

ENCODER = {"num_latents": 8, "num_latent_channels": 16, "num_self_attention_heads": 2}


def audio_config(**overrides) -> AudioClassifierConfig:
    base = dict(num_samples=128, samples_per_patch=8, num_frequency_bands=4, encoder=ENCODER)
    return AudioClassifierConfig.model_validate({**base, **overrides})


def video_config(**overrides) -> VideoClassifierConfig:
    base = dict(
        video_shape=(4, 8, 8, 3),
        patch_shape=(2, 4, 4),
        num_frequency_bands=3,
        num_classes=5,
        encoder=ENCODER,
    )
    return VideoClassifierConfig.model_validate({**base, **overrides})


def point_config(**overrides) -> PointCloudClassifierConfig:
    base = dict(num_frequency_bands=4, max_resolution=32, num_classes=7, encoder=ENCODER)
    return PointCloudClassifierConfig.model_validate({**base, **overrides})


CASES = {
    "audio": (audio_config, audio_classifier, lambda: torch.randn(3, 128)),
    "video": (video_config, video_classifier, lambda: torch.rand(3, 4, 8, 8, 3)),
    "point_cloud": (point_config, point_cloud_classifier, lambda: torch.rand(3, 50, 3) * 2 - 1),
}


@pytest.mark.parametrize("kind", CASES)
def test_forward_backward_shapes(kind):
    make_config, builder, make_inputs = CASES[kind]
    config = make_config()
    torch.manual_seed(0)
    model = builder(config)
    assert type(model) is PerceiverIO
    x = make_inputs()
    logits = model(x)
    assert logits.shape == (3, config.num_classes)
    logits.square().mean().backward()
    assert all(torch.isfinite(g).all() for g in grads(model).values())


@pytest.mark.parametrize("kind", CASES)
def test_portable_round_trip(kind):
    make_config, _, make_inputs = CASES[kind]
    torch.manual_seed(0)
    model = PortableModel(make_config()).eval()
    buf = io.BytesIO()
    torch.save(model, buf)
    loaded = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    x = make_inputs()
    torch.testing.assert_close(loaded(x), model(x))


def test_audio_classifier_is_multi_label_by_default():
    config = AudioClassifierConfig()
    assert config.num_classes == 527
    torch.manual_seed(0)
    model = audio_classifier(audio_config(num_classes=527))
    logits = model(torch.randn(2, 128))
    targets = torch.zeros(2, 527)
    targets[0, [3, 10]] = 1.0  # several labels at once
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    loss.backward()
    assert torch.isfinite(loss)


def test_audio_max_resolution_sets_the_fourier_bands():
    model = audio_classifier(audio_config(max_resolution=128))
    table = model.encoder.input_adapter.position_encoding.table  # (16 patches, P)
    expected = fourier_features(torch.linspace(-1, 1, 16)[:, None], 4, (128,))
    torch.testing.assert_close(table, expected)


def test_video_channels_first_matches_channels_last():
    torch.manual_seed(0)
    last = video_classifier(video_config()).eval()
    first = video_classifier(video_config(channels_first=True)).eval()
    first.load_state_dict(last.state_dict())
    x = torch.rand(2, 4, 8, 8, 3)
    torch.testing.assert_close(first(x.permute(0, 1, 4, 2, 3)), last(x))


def test_point_cloud_classifier_ignores_point_order_and_count():
    torch.manual_seed(0)
    model = point_cloud_classifier(point_config()).eval()
    points = torch.rand(2, 40, 3) * 2 - 1
    permuted = points[:, torch.randperm(40)]
    torch.testing.assert_close(model(permuted), model(points))
    assert model(points[:, :17]).shape == (2, 7)  # any number of points


def test_point_cloud_adapter_features():
    adapter = PointCloudInputAdapter(num_frequency_bands=2, max_resolution=8)
    points = torch.tensor([[[0.5, -0.25, 1.0]]])
    out = adapter(points)
    assert out.shape == (1, 1, 3 + 2 * 3 * 2) == (1, 1, adapter.num_input_channels)
    torch.testing.assert_close(out[0, 0, :3], points[0, 0])  # raw xyz first
    torch.testing.assert_close(out[0], fourier_features(points[0], 2, (8, 8, 8)))
    with pytest.raises(ValueError, match=r"expected points of shape \(B, N, 3\), got \(2, 5\)"):
        adapter(torch.zeros(2, 5))


@pytest.mark.parametrize(
    "make, overrides, match",
    [
        (audio_config, {"samples_per_patch": 7}, "samples_per_patch=7 must divide"),
        (video_config, {"patch_shape": (3, 4, 4)}, r"patch_shape=\(3, 4, 4\) must divide"),
        (video_config, {"mean": (0.5,), "std": (0.5,)}, "one entry per channel"),
        (point_config, {"max_resolution": 0}, "max_resolution"),
    ],
)
def test_bad_configs_are_rejected(make, overrides, match):
    with pytest.raises(ValidationError, match=match):
        make(**overrides)
