"""``from_transformers`` on ``PerceiverForMultimodalAutoencoding`` against transformers itself.

A tiny random Hugging Face model (every weight perturbed) is converted; both models get the
same dict inputs and the same ``subsampled_output_points`` / ``output_indices``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # build from configs only, never download

import pytest
import torch
import transformers

from perceiver.config import MultimodalAutoencoderConfig
from perceiver.convert import from_transformers, from_transformers_with_config
from perceiver.modules.multimodal_autoencoder import MultimodalAutoencoder
from perceiver.portable import PortableModel

TOLERANCE = 1e-4
FRAMES, SIZE, SAMPLES_PER_FRAME, PATCH, LABELS = 2, 8, 16, 4, 5
NUM_PIXELS = FRAMES * SIZE * SIZE
NUM_PATCHES = FRAMES * SAMPLES_PER_FRAME // PATCH


def hf_model(seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    kwargs = dict(
        num_latents=8,
        d_latents=32,
        num_blocks=2,
        num_self_attends_per_block=2,
        num_self_attention_heads=4,
        num_cross_attention_heads=1,
        num_labels=LABELS,
        attention_probs_dropout_prob=0.0,
        num_frames=FRAMES,
        image_size=SIZE,
        audio_samples_per_frame=SAMPLES_PER_FRAME,
        samples_per_patch=PATCH,
        output_shape=[1, FRAMES, SIZE, SIZE],
        output_num_channels=16,
    )
    kwargs.update(overrides)
    model = transformers.PerceiverForMultimodalAutoencoding(transformers.PerceiverConfig(**kwargs))
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.1 * torch.randn_like(tensor))
    return model.eval()


def inputs(batch: int = 3) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {
        "audio": torch.randn(batch, FRAMES * SAMPLES_PER_FRAME, 1),
        "image": torch.randn(batch, FRAMES, 3, SIZE, SIZE),  # (B, T, C, H, W)
        "label": torch.zeros(batch, LABELS),
    }


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    assert ours.shape == theirs.shape
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


SUBSAMPLINGS = {
    "chunk": {"audio": torch.arange(2, 6), "image": torch.arange(10, 60), "label": None},
    "scattered": {
        "audio": torch.tensor([7, 0, 3]),
        "image": torch.tensor([127, 0, 64, 5, 99]),
        "label": None,
    },
    "everything": {
        "audio": torch.arange(NUM_PATCHES),
        "image": torch.arange(NUM_PIXELS),
        "label": None,
    },
}


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_outputs_match_transformers(subsampling):
    theirs = hf_model()
    ours = from_transformers(theirs)
    assert type(ours) is MultimodalAutoencoder and not ours.training
    points = SUBSAMPLINGS[subsampling]
    x = inputs()
    with torch.no_grad():
        expected = theirs(inputs=x, subsampled_output_points=points).logits
        got = ours(x, output_indices=points)
    assert set(got) == set(expected) == {"audio", "image", "label"}
    assert expected["image"].shape == (3, points["image"].numel(), 3)
    assert expected["audio"].shape == (3, points["audio"].numel() * PATCH)
    for name in expected:
        assert relative_error(got[name], expected[name]) < TOLERANCE, name


def test_chunked_reconstruction_matches_transformers_one_shot():
    theirs = hf_model()
    ours = from_transformers(theirs)
    x = inputs()
    with torch.no_grad():
        expected = theirs(inputs=x, subsampled_output_points=SUBSAMPLINGS["everything"]).logits
    pieces = ours.reconstruct(x, num_chunks=4)
    assert pieces["image"].shape == (3, FRAMES, SIZE, SIZE, 3)
    assert relative_error(pieces["image"].reshape(3, -1, 3), expected["image"]) < TOLERANCE
    assert relative_error(pieces["audio"], expected["audio"]) < TOLERANCE
    assert relative_error(pieces["label"], expected["label"]) < TOLERANCE


def test_config_describes_the_conversion_and_rebuilds_it():
    theirs = hf_model()
    config, ours = from_transformers_with_config(theirs)
    assert isinstance(config, MultimodalAutoencoderConfig)
    assert config.channels_first and config.eval_masked == ("label",)
    assert config.image_max_resolution == (FRAMES, SIZE, SIZE)
    assert config.audio_max_resolution == FRAMES * SAMPLES_PER_FRAME
    rebuilt = PortableModel(config.model_validate_json(config.model_dump_json()), ours.state_dict())
    x, points = inputs(), SUBSAMPLINGS["scattered"]
    with torch.no_grad():
        a, b = rebuilt.eval()(x, output_indices=points), ours(x, output_indices=points)
    for name in a:
        torch.testing.assert_close(a[name], b[name])


def test_converted_model_trains():
    ours = from_transformers(hf_model()).train()
    out = ours(inputs(), output_indices=SUBSAMPLINGS["chunk"])
    loss = sum(v.square().mean() for v in out.values())
    loss.backward()
    used = [p for n, p in ours.named_parameters() if "mask_tokens.audio" not in n]
    used = [p for p in used if p is not ours.encoder.input_adapter.mask_tokens["image"]]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in used)


def test_image_size_is_rejected_for_the_multimodal_model():
    with pytest.raises(ValueError, match="image_size=16 only applies to image models"):
        from_transformers(hf_model(), image_size=16)
