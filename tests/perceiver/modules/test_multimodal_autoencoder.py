"""Multimodal (audio + video + label) autoencoder: adapter, decoder, chunked decoding."""

from __future__ import annotations

import io

import pytest
import torch
from pydantic import ValidationError

from perceiver.adapters.audio import AudioInputAdapter
from perceiver.adapters.label import LabelInputAdapter
from perceiver.adapters.multimodal import MultimodalInputAdapter
from perceiver.builders import multimodal_autoencoder
from perceiver.config import MultimodalAutoencoderConfig
from perceiver.decoders import FourierQuery
from perceiver.modules.multimodal_autoencoder import MultimodalAutoencoder
from perceiver.modules.position import fourier_features
from perceiver.portable import PortableModel

FRAMES, SIZE, SAMPLES, CLASSES = 2, 8, 32, 5


def tiny(**overrides) -> MultimodalAutoencoderConfig:
    base = dict(
        num_frames=FRAMES,
        image_size=(SIZE, SIZE),
        image_num_frequency_bands=2,
        audio_samples_per_frame=SAMPLES // FRAMES,
        samples_per_patch=4,
        audio_num_frequency_bands=3,
        num_classes=CLASSES,
        encoder={"num_latents": 8, "num_latent_channels": 16, "num_self_attention_heads": 2},
        decoder={
            "num_output_channels": 8,
            "image_num_frequency_bands": 2,
            "audio_num_frequency_bands": 3,
            "num_label_query_channels": 12,
        },
    )
    return MultimodalAutoencoderConfig.model_validate({**base, **overrides})


def inputs(batch: int = 2) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {
        "audio": torch.randn(batch, SAMPLES),
        "image": torch.rand(batch, FRAMES, SIZE, SIZE, 3),
        "label": torch.nn.functional.one_hot(torch.arange(batch) % CLASSES, CLASSES).float(),
    }


def model(**overrides) -> MultimodalAutoencoder:
    torch.manual_seed(0)
    built = multimodal_autoencoder(tiny(**overrides))
    assert isinstance(built, MultimodalAutoencoder)
    return built


def test_forward_shapes_and_backward():
    m = model().train()
    out = m(inputs())
    num_pixels = FRAMES * SIZE * SIZE
    assert out["audio"].shape == (2, SAMPLES)
    assert out["image"].shape == (2, num_pixels, 3)
    assert out["label"].shape == (2, CLASSES)
    x = inputs()
    loss = (
        (out["audio"] - x["audio"]).square().mean()
        + (out["image"] - x["image"].reshape(2, -1, 3)).square().mean()
        + torch.nn.functional.cross_entropy(out["label"], x["label"].argmax(-1))
    )
    loss.backward()
    unused = {f"encoder.input_adapter.mask_tokens.{name}" for name in ("audio", "image")}
    for name, p in m.named_parameters():  # audio and image have mask probability 0
        assert (p.grad is None) == (name in unused), name
        assert p.grad is None or torch.isfinite(p.grad).all(), name
    label_token = m.encoder.input_adapter.mask_tokens["label"]
    assert label_token.grad.abs().sum() > 0  # the label is masked in training


def test_chunked_reconstruction_equals_one_shot():
    m = model().eval()
    x = inputs()
    with torch.no_grad():
        one_shot = m(x)
    pieces = m.reconstruct(x, num_chunks=3)
    assert pieces["image"].shape == (2, FRAMES, SIZE, SIZE, 3)  # laid out on the video grid
    torch.testing.assert_close(pieces["image"].reshape(2, -1, 3), one_shot["image"])
    torch.testing.assert_close(pieces["audio"], one_shot["audio"])
    torch.testing.assert_close(pieces["label"], one_shot["label"])
    # The decoder's own chunking (bounded queries per attention call) gives the same result.
    m.decoder.chunk_size = 7
    with torch.no_grad():
        torch.testing.assert_close(m(x)["image"], one_shot["image"])


def test_subsampled_outputs_equal_the_same_outputs_decoded_with_all_others():
    m = model().eval()
    x = inputs()
    image_idx, audio_idx = torch.tensor([5, 0, 127, 64]), torch.tensor([2, 3])
    with torch.no_grad():
        full = m(x)
        sub = m(x, output_indices={"image": image_idx, "audio": audio_idx, "label": None})
        only_image = m(x, output_indices={"image": image_idx})
    assert set(only_image) == {"image"}
    torch.testing.assert_close(sub["image"], full["image"][:, image_idx])
    torch.testing.assert_close(only_image["image"], full["image"][:, image_idx])
    # audio patch k holds samples 4k..4k+3
    torch.testing.assert_close(sub["audio"], full["audio"][:, 8:16])
    torch.testing.assert_close(sub["label"], full["label"])


def test_fourier_queries_use_subsampling_coordinates():
    query = FourierQuery((2, 4), num_frequency_bands=3, max_resolution=(2, 8))
    idx = torch.tensor([0, 5, 7])
    coords = torch.tensor([[0, 0], [1, 1], [1, 3]], dtype=torch.float32)
    expected = fourier_features(-1 + 2 * coords / torch.tensor([2.0, 4.0]), 3, (2, 8))
    torch.testing.assert_close(query(1, indices=idx)[0], expected)


def test_hugging_face_keyword_subsampled_output_points():
    """Code written for transformers' PerceiverForMultimodalAutoencoding runs unchanged."""
    m = model().eval()
    x = inputs()
    points = {"image": torch.tensor([3, 9]), "audio": torch.tensor([1]), "label": None}
    with torch.no_grad():
        ours = m(x, output_indices=points)
        theirs = m(x, subsampled_output_points=points)
        positional = m(x, points)
    for name in points:
        torch.testing.assert_close(theirs[name], ours[name])
        torch.testing.assert_close(positional[name], ours[name])
    with pytest.raises(ValueError, match="output_indices or subsampled_output_points, not both"):
        m(x, output_indices=points, subsampled_output_points=points)


def test_bad_output_indices_name_the_problem():
    m = model().eval()
    latents = m.encode(inputs())
    with pytest.raises(ValueError, match=r"output_indices\['audio'\] must lie in \[0, 8\)"):
        m.decode(latents, {"audio": torch.tensor([8])})
    with pytest.raises(ValueError, match="unknown modality 'text'"):
        m.decode(latents, {"text": None})


def test_input_adapter_pads_orders_and_masks():
    torch.manual_seed(0)
    audio = AudioInputAdapter(8, 4, 1)  # 2 positions of 4 + 3 channels
    label = LabelInputAdapter(3)  # 1 position of 3 channels
    adapter = MultimodalInputAdapter(
        {"audio": audio, "label": label},
        min_padding_size=2,
        mask_probs={"label": 1.0},
        eval_masked=("label",),
    )
    assert adapter.num_input_channels == 7 + 2
    x = {"audio": torch.randn(2, 8), "label": torch.tensor([[0.0, 1.0, 0.0]] * 2)}
    adapter.train(False)
    out = adapter(x)  # (B, 2 + 1, 9)
    assert out.shape == (2, 3, 9)
    torch.testing.assert_close(out[:, :2, :7], audio(x["audio"]))
    torch.testing.assert_close(out[:, :2, 7:], adapter.padding["audio"].expand(2, 2, 2))
    token = adapter.mask_tokens["label"]
    torch.testing.assert_close(out[:, 2], token.expand(2, -1))  # label masked in eval too
    adapter.eval_masked = frozenset()
    torch.testing.assert_close(adapter(x)[:, 2, :3], x["label"])
    with pytest.raises(ValueError, match=r"modalities \['audio', 'label'\], got \['audio'\]"):
        adapter({"audio": x["audio"]})


def test_training_mask_probability():
    torch.manual_seed(0)
    adapter = MultimodalInputAdapter(
        {"audio": AudioInputAdapter(4000, 1, 1)}, mask_probs={"audio": 0.25}
    ).train()
    out = adapter({"audio": torch.randn(1, 4000)})
    masked = (out == adapter.mask_tokens["audio"]).all(-1)  # (1, 4000)
    assert 0.2 < masked.float().mean().item() < 0.3
    adapter.eval()  # audio is not in eval_masked: no masking in eval
    assert (
        not (adapter({"audio": torch.randn(1, 4000)}) == adapter.mask_tokens["audio"]).all(-1).any()
    )


def test_portable_round_trip_and_channels_first():
    m = PortableModel(tiny()).eval()
    buf = io.BytesIO()
    torch.save(m, buf)
    loaded = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    x = inputs()
    expected = m(x)
    for name, value in loaded(x).items():
        torch.testing.assert_close(value, expected[name])
    first = PortableModel(tiny(channels_first=True), m.model.state_dict()).eval()
    x_first = dict(x, image=x["image"].permute(0, 1, 4, 2, 3))  # (B, T, C, H, W)
    torch.testing.assert_close(first(x_first)["image"], expected["image"])


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"mask_probs": {"video": 0.5}}, "masked modality 'video'"),
        ({"mask_probs": {"label": 1.5}}, r"mask_probs\['label'\]=1.5"),
        ({"image_patch_shape": (1, 3, 3)}, r"image_patch_shape=\(1, 3, 3\) must divide"),
        ({"samples_per_patch": 5}, "samples_per_patch=5 must divide"),
    ],
)
def test_bad_configs_are_rejected(overrides, match):
    with pytest.raises(ValidationError, match=match):
        tiny(**overrides)
