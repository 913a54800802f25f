"""Converted models are described by our task configs and rebuilt from them alone.

``from_transformers_with_config`` returns (config, model); building from the config with
the task's builder (``PortableModel``) and loading the converted state dict must give the
same outputs bit for bit, and the same as Hugging Face within the conversion tolerance.
"""

from __future__ import annotations

import io

import pytest
import torch

from perceiver.config import (
    TASK_CONFIGS,
    ImageClassifierConfig,
    MaskedLMConfig,
    OpticalFlowConfig,
    SequenceClassifierConfig,
    task_config,
)
from perceiver.convert import (
    SUPPORTED_CLASSES,
    from_transformers_with_config,
    load_converted,
    save_converted,
)
from perceiver.modules.attention import MultiHeadAttention
from perceiver.portable import PortableModel
from tests.perceiver.convert.test_convert import (
    FLOW_CLASS,
    TEXT_CLASSES,
    TOLERANCE,
    VARIANTS,
    frame_pairs,
    hf_flow,
    hf_model,
    images,
    relative_error,
    token_ids,
)

CONFIG_CLASSES = {
    "PerceiverForImageClassificationFourier": ImageClassifierConfig,
    "PerceiverForImageClassificationLearned": ImageClassifierConfig,
    "PerceiverForImageClassificationConvProcessing": ImageClassifierConfig,
    "PerceiverForMaskedLM": MaskedLMConfig,
    "PerceiverForSequenceClassification": SequenceClassifierConfig,
    "PerceiverForOpticalFlow": OpticalFlowConfig,
}


def run(model: torch.nn.Module, name: str, hf: bool = False) -> torch.Tensor:
    """The model's output on fixed inputs of its class (text: with an attention mask)."""
    with torch.no_grad():
        if name in TEXT_CLASSES:
            ids, mask = token_ids()
            return model(inputs=ids, attention_mask=mask).logits if hf else model(ids, None, mask)
        if name == FLOW_CLASS:
            return hf_flow(model, frame_pairs()) if hf else model(frame_pairs())
        return model(inputs=images()).logits if hf else model(images())


def test_every_supported_class_has_a_config_class():
    assert set(CONFIG_CLASSES) == set(SUPPORTED_CLASSES)
    converted = {c.model_fields["task"].default for c in CONFIG_CLASSES.values()}
    # every converted task is in the task table, which also has tasks without a Hugging Face
    # class (audio, video, point cloud) and the multimodal autoencoder (test_multimodal).
    assert converted | {"multimodal_autoencoding"} <= set(TASK_CONFIGS)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", SUPPORTED_CLASSES)
def test_model_built_from_the_config_reproduces_the_conversion_exactly(name, variant):
    theirs = hf_model(name, **VARIANTS[variant])
    config, ours = from_transformers_with_config(theirs)
    assert type(config) is CONFIG_CLASSES[name]
    # The config survives JSON, as PortableModel and config.json store it.
    assert task_config(config.model_dump(mode="json")) == config
    rebuilt = PortableModel(config, ours.state_dict()).eval()
    assert type(rebuilt.model) is type(ours)
    assert list(rebuilt.model.state_dict()) == list(ours.state_dict())
    expected = run(ours, name)
    assert torch.equal(run(rebuilt, name), expected)
    assert relative_error(expected, run(theirs, name, hf=True)) < TOLERANCE


@pytest.mark.parametrize("name", SUPPORTED_CLASSES)
def test_converted_model_pickles_and_saves_as_config_and_weights(name, tmp_path):
    theirs = hf_model(name, attention_probs_dropout_prob=0.1)
    config, ours = from_transformers_with_config(theirs)
    assert config.encoder.attention_dropout == 0.1 and config.encoder.dropout == 0.0
    portable = PortableModel(config, ours.state_dict()).eval()
    buf = io.BytesIO()
    torch.save(portable, buf)
    unpickled = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    save_converted(tmp_path, config, ours)
    loaded = load_converted(tmp_path)
    assert not loaded.training and loaded.config == config
    expected = run(ours.eval(), name)
    assert torch.equal(run(unpickled, name), expected)
    assert torch.equal(run(loaded, name), expected)
    # Dropout on attention probabilities survives the rebuild.
    assert {m.dropout for m in loaded.modules() if isinstance(m, MultiHeadAttention)} == {0.1}


def test_masked_lm_stores_the_tied_embedding_once_and_stays_tied(tmp_path):
    config, ours = from_transformers_with_config(hf_model("PerceiverForMaskedLM"))
    save_converted(tmp_path, config, ours)
    from safetensors.torch import load_file

    stored = load_file(tmp_path / "model.safetensors")
    assert len(stored) == len(ours.state_dict()) - 1
    loaded = load_converted(tmp_path)
    head = loaded.model.decoder.head
    assert head.embedding is loaded.model.encoder.input_adapter.token_embedding


def test_image_size_override_is_in_the_config():
    theirs = hf_model("PerceiverForImageClassificationFourier")
    config, _ = from_transformers_with_config(theirs, image_size=(24, 40))
    assert isinstance(config, ImageClassifierConfig)
    assert config.image_shape == (24, 40, 3)
    hf_resolution = theirs.perceiver.input_preprocessor.position_embeddings.max_resolution
    assert config.max_resolution == tuple(hf_resolution)  # (224, 224) whatever the image size
    assert config.channels_first and not config.normalize


def test_load_converted_names_the_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"config\.json not found"):
        load_converted(tmp_path)


# -- the new configs without Hugging Face ------------------------------------------------

ENCODER = {"num_latents": 4, "num_latent_channels": 16, "num_self_attention_heads": 2}


def test_text_and_flow_configs_build_and_run_without_transformers():
    torch.manual_seed(0)
    mlm = PortableModel(
        MaskedLMConfig(vocab_size=30, max_seq_len=10, num_input_channels=8, encoder=ENCODER)
    )
    assert mlm(torch.randint(0, 30, (2, 7))).shape == (2, 10, 30)
    cls = PortableModel(
        SequenceClassifierConfig(
            vocab_size=30, max_seq_len=10, num_input_channels=8, num_classes=3, encoder=ENCODER
        )
    )
    ids = torch.randint(0, 30, (2, 7))
    assert cls(ids, attention_mask=torch.ones(2, 7)).shape == (2, 3)
    flow = PortableModel(
        OpticalFlowConfig(image_size=(6, 8), num_frequency_bands=3, encoder=ENCODER)
    )
    frames = torch.randint(0, 256, (2, 2, 6, 8, 3), dtype=torch.uint8)  # as the shards hold
    assert flow(frames).shape == (2, 6, 8, 2)
    # A config written before flow models took raw frames describes the same model.
    old = OpticalFlowConfig.model_validate({"frames_shape": (2, 27, 6, 8), "encoder": ENCODER})
    assert (old.num_frames, old.image_size, old.num_image_channels, old.patch_size) == (
        2,
        (6, 8),
        3,
        3,
    )


def test_trainable_image_positions_from_config():
    config = ImageClassifierConfig(
        image_shape=(8, 8, 3),
        num_classes=2,
        preprocessing="conv1x1",
        num_preprocessing_channels=6,
        position_encoding="trainable",
        num_position_channels=5,
        num_position_projection_channels=4,
        encoder=ENCODER,
    )
    model = PortableModel(config)
    keys = set(model.model.state_dict())
    assert "encoder.input_adapter.position_encoding.encoding.table" in keys
    assert model.model.encoder.input_adapter.num_input_channels == 6 + 4
    assert model(torch.rand(2, 8, 8, 3)).shape == (2, 2)


def test_default_image_classifier_keys_do_not_change():
    config = ImageClassifierConfig(num_classes=3, image_shape=(8, 8, 3), num_frequency_bands=2)
    keys = set(PortableModel(config).model.state_dict())
    assert not any("position_encoding" in k for k in keys)  # Fourier: a non-persistent buffer


def test_invalid_new_config_options_fail_at_validation():
    with pytest.raises(ValueError, match="needs num_position_channels"):
        ImageClassifierConfig(num_classes=2, position_encoding="trainable")
    with pytest.raises(ValueError, match="apply to position_encoding='trainable' only"):
        ImageClassifierConfig(num_classes=2, num_position_channels=4)
    with pytest.raises(ValueError, match="self-attention qk channels=10 must be divisible"):
        MaskedLMConfig(
            encoder=dict(ENCODER, num_self_attention_qk_channels=10, num_self_attention_heads=4)
        )
    with pytest.raises(ValueError, match="num_output_query_channels=16 must equal"):
        MaskedLMConfig(num_input_channels=8, decoder={"num_output_query_channels": 16})
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        OpticalFlowConfig(frames=(2, 3, 4, 5))
    with pytest.raises(ValueError, match="rescale_factor must be non-zero"):
        OpticalFlowConfig(decoder={"rescale_factor": 0})
