"""``perceiver.convert.from_transformers`` against the Hugging Face implementation itself.

Each supported class is built from a small ``PerceiverConfig`` with random weights (every
parameter and buffer perturbed, so swapped layer norms or biases cannot hide behind their
initial ones and zeros), converted, and both models are run on the same random inputs.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # build from configs only, never download

import pytest
import torch
import transformers
from torch import nn

from perceiver.adapters import extract_flow_patches
from perceiver.convert import ALL_SUPPORTED_CLASSES, SUPPORTED_CLASSES, from_transformers
from perceiver.modules.attention import MultiHeadAttention
from perceiver.modules.perceiver_io import PerceiverIO, TextPerceiverIO

TOLERANCE = 1e-4
IMAGE_SIZE = 32
VOCAB_SIZE = 40
MAX_POSITIONS = 16

IMAGE_CLASSES = [
    "PerceiverForImageClassificationFourier",
    "PerceiverForImageClassificationLearned",
    "PerceiverForImageClassificationConvProcessing",
]
TEXT_CLASSES = ["PerceiverForMaskedLM", "PerceiverForSequenceClassification"]
FLOW_CLASS = "PerceiverForOpticalFlow"

BASE = dict(
    num_latents=8,
    d_latents=32,
    num_blocks=2,
    num_self_attends_per_block=2,
    num_self_attention_heads=4,
    num_cross_attention_heads=1,
    num_labels=5,
    attention_probs_dropout_prob=0.0,
)
IMAGE = dict(BASE, image_size=IMAGE_SIZE)
TEXT = dict(BASE, d_model=32, vocab_size=VOCAB_SIZE, max_position_embeddings=MAX_POSITIONS)
FLOW_SIZE = (12, 16)
FLOW = dict(BASE, train_size=FLOW_SIZE, num_cross_attention_heads=2)
FLOW_SCALE = 20.0  # DeepMind's: its model outputs the flow / 20, as Hugging Face's .logits

# Encoder options beyond the defaults, each exercised on an image and a text class.
VARIANTS = {
    "defaults": {},
    "qk_v_channels": dict(qk_channels=16, v_channels=32, num_cross_attention_heads=2),
    "shape_q_no_residual_wide": dict(
        cross_attention_shape_for_attention="q",
        use_query_residual=False,
        cross_attention_widening_factor=2,
        self_attention_widening_factor=3,
        num_blocks=1,
        num_self_attends_per_block=3,
    ),
}


def hf_model(name: str, seed: int = 0, **overrides) -> nn.Module:
    torch.manual_seed(seed)
    kwargs = dict(TEXT if name in TEXT_CLASSES else FLOW if name == FLOW_CLASS else IMAGE)
    kwargs.update(overrides)
    model = getattr(transformers, name)(transformers.PerceiverConfig(**kwargs))
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if key.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif tensor.is_floating_point():
                tensor.add_(0.1 * torch.randn_like(tensor))
    return model.eval()


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    assert ours.shape == theirs.shape
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


def images(batch: int = 3, size: int = IMAGE_SIZE) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(batch, 3, size, size)  # (B, C, H, W), un-normalised


def token_ids(batch: int = 3, length: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids and an attention mask (1 = token, 0 = padding) with two padded rows."""
    torch.manual_seed(2)
    ids = torch.randint(0, VOCAB_SIZE, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[0, 7:] = 0
    mask[2, 3:] = 0
    return ids, mask


# -- outputs match ---------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", IMAGE_CLASSES)
def test_image_classifiers_match_transformers(name, variant):
    theirs = hf_model(name, **VARIANTS[variant])
    ours = from_transformers(theirs)
    assert type(ours) is PerceiverIO
    assert not ours.training
    x = images()
    with torch.no_grad():
        expected = theirs(inputs=x).logits  # (B, num_labels)
        assert expected.shape == (3, 5)
        assert relative_error(ours(x), expected) < TOLERANCE


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", TEXT_CLASSES)
def test_text_models_match_transformers_with_and_without_padding(name, variant):
    theirs = hf_model(name, **VARIANTS[variant])
    ours = from_transformers(theirs)
    assert type(ours) is TextPerceiverIO
    ids, mask = token_ids()
    with torch.no_grad():
        expected = theirs(inputs=ids).logits
        expected_masked = theirs(inputs=ids, attention_mask=mask).logits
        assert relative_error(ours(ids), expected) < TOLERANCE
        assert relative_error(ours(ids, attention_mask=mask), expected_masked) < TOLERANCE
        # The pad mask is the same thing in our convention.
        torch.testing.assert_close(ours(ids, pad_mask=mask == 0), ours(ids, attention_mask=mask))
        # Padding matters, so the masked comparison really tested the mask.
        assert relative_error(expected_masked, expected) > 1e-3


def frame_pairs(batch: int = 3) -> torch.Tensor:
    """(B, 2, H, W, 3) uint8 frame pairs, as the autoflow shards hold them (our model's input)."""
    torch.manual_seed(3)
    return torch.randint(0, 256, (batch, 2, *FLOW_SIZE, 3), dtype=torch.uint8)


def hf_flow(theirs: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """What DeepMind's colab computes with Hugging Face's model: frames scaled to [-1, 1],
    3x3 patches (B, 2, 27, H, W) as its input, the output times the flow scale 20."""
    patches = extract_flow_patches(frames.float() / 255.0 * 2 - 1)
    return theirs(inputs=patches).logits * FLOW_SCALE


@pytest.mark.parametrize("variant", VARIANTS)
def test_optical_flow_takes_raw_frames_and_matches_transformers(variant):
    theirs = hf_model(FLOW_CLASS, **VARIANTS[variant])
    ours = from_transformers(theirs)
    x = frame_pairs()
    with torch.no_grad():
        expected = hf_flow(theirs, x)
        assert expected.shape == (3, *FLOW_SIZE, 2)
        assert relative_error(ours(x), expected) < TOLERANCE


def test_masked_lm_decodes_every_position_with_the_tied_embedding():
    theirs = hf_model("PerceiverForMaskedLM")
    ours = from_transformers(theirs)
    ids, _ = token_ids(length=MAX_POSITIONS)
    with torch.no_grad():
        logits = ours(ids)
        assert logits.shape == (3, MAX_POSITIONS, VOCAB_SIZE)  # as Hugging Face: all positions
        assert relative_error(logits, theirs(inputs=ids).logits) < TOLERANCE
    embedding = ours.encoder.input_adapter.token_embedding
    assert ours.decoder.head.embedding is embedding  # tied, not copied


def test_conv_processing_uses_batchnorm_statistics_and_unpadded_pooling():
    theirs = hf_model("PerceiverForImageClassificationConvProcessing")
    ours = from_transformers(theirs)
    adapter = ours.encoder.input_adapter
    assert adapter.grid_shape == (7, 7)  # conv 32 -> 16, pool 3x3/2 without padding -> 7
    bn = theirs.perceiver.input_preprocessor.convnet.batchnorm
    torch.testing.assert_close(adapter.norm.running_var, bn.running_var)


def test_fourier_classifier_accepts_another_image_size():
    theirs = hf_model("PerceiverForImageClassificationFourier")
    ours = from_transformers(theirs, image_size=(24, 40))
    x = torch.randn(2, 3, 24, 40)
    with torch.no_grad():
        assert relative_error(ours(x), theirs(inputs=x).logits) < TOLERANCE


def test_conversion_follows_dropout_mode_and_dtype():
    theirs = hf_model("PerceiverForSequenceClassification", attention_probs_dropout_prob=0.25)
    theirs.train()
    ours = from_transformers(theirs)
    assert ours.training
    attentions = [m for m in ours.modules() if isinstance(m, MultiHeadAttention)]
    assert attentions and all(m.dropout == 0.25 for m in attentions)
    ours_double = from_transformers(theirs.double().eval())
    assert next(ours_double.parameters()).dtype == torch.float64
    ids, mask = token_ids()
    with torch.no_grad():
        expected = theirs(inputs=ids, attention_mask=mask).logits
        assert relative_error(ours_double(ids, attention_mask=mask), expected) < 1e-10


# -- training --------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*IMAGE_CLASSES, *TEXT_CLASSES, FLOW_CLASS])
def test_converted_model_trains(name):
    ours = from_transformers(hf_model(name, attention_probs_dropout_prob=0.1)).train()
    optimizer = torch.optim.SGD(ours.parameters(), lr=1e-2)
    if name in TEXT_CLASSES:
        ids, mask = token_ids()
        logits = ours(ids, attention_mask=mask)
    elif name == FLOW_CLASS:
        logits = ours(frame_pairs())
    else:
        logits = ours(images())
    if name == FLOW_CLASS:
        loss = logits.square().mean()  # (B, H, W, 2) flow
    elif name == "PerceiverForMaskedLM":
        targets = torch.randint(0, VOCAB_SIZE, logits.shape[:2])
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    else:
        loss = nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2]))
    loss.backward()
    for param_name, param in ours.named_parameters():
        assert param.grad is not None, f"{param_name} has no gradient"
        assert torch.isfinite(param.grad).all(), param_name
    before = [p.detach().clone() for p in ours.parameters()]
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, ours.parameters(), strict=True))


# -- what is not supported -------------------------------------------------------------


def test_supported_classes():
    assert set(SUPPORTED_CLASSES) == {*IMAGE_CLASSES, *TEXT_CLASSES, FLOW_CLASS}
    # the multimodal autoencoder (dict inputs) converts too; see test_convert_multimodal
    assert (*SUPPORTED_CLASSES, "PerceiverForMultimodalAutoencoding") == ALL_SUPPORTED_CLASSES


@pytest.mark.parametrize("name", ["PerceiverModel"])
def test_unsupported_class_raises_naming_it(name):
    model = getattr(transformers, name)(transformers.PerceiverConfig(**IMAGE))
    with pytest.raises(ValueError, match=f"unsupported transformers model class '{name}'"):
        from_transformers(model)


def test_unsupported_options_raise_naming_them():
    with pytest.raises(ValueError, match="hidden_act='relu'"):
        from_transformers(hf_model("PerceiverForSequenceClassification", hidden_act="relu"))
    learned = hf_model("PerceiverForImageClassificationLearned")
    with pytest.raises(ValueError, match="position_encoding has 1024 positions"):
        from_transformers(learned, image_size=16)
    with pytest.raises(ValueError, match="image_size=16 only applies to image models"):
        from_transformers(hf_model("PerceiverForMaskedLM"), image_size=16)


def test_converted_models_reject_wrong_inputs():
    ours = from_transformers(hf_model("PerceiverForImageClassificationFourier"))
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 3, 32, 32\)"):
        ours(torch.zeros(1, 32, 32, 3))
    text = from_transformers(hf_model("PerceiverForMaskedLM"))
    ids, mask = token_ids(length=MAX_POSITIONS + 1)
    with pytest.raises(ValueError, match=f"exceeds max_seq_len={MAX_POSITIONS}"):
        text(ids)
    ids, mask = token_ids()
    with pytest.raises(ValueError, match="not both"):
        text(ids, pad_mask=mask == 0, attention_mask=mask)
    with pytest.raises(ValueError, match="does not match"):
        text(ids, attention_mask=mask[:, :5])
