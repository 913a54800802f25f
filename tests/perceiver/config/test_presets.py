"""Every YAML config in perceiver/configs loads; tiny ones build and run, paper ones match.

The paper-sized models are built on the meta device only (no memory is allocated), and their
parameter counts are compared with Hugging Face's models of the same architectures (the
configurations of transformers' conversion script), also built on the meta device.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # build from configs only, never download

import pytest
import torch

from perceiver.config import load_task_config, shipped_configs
from perceiver.portable import PortableModel, build
from tests.perceiver.helpers import num_parameters

CONFIGS = shipped_configs()
TINY = sorted(name for name in CONFIGS if name.startswith("tiny_"))
PAPER = sorted(name for name in CONFIGS if not name.startswith("tiny_"))

# Parameters of the paper-sized configs (equal to transformers' models, see below).
PAPER_PARAMETERS = {
    "imagenet_fourier": 48_440_627,
    "imagenet_learned": 62_255_848,
    "imagenet_conv": 48_646_522,
    "optical_flow": 41_057_134,
    "kinetics_autoencoder": 19_858_855,
    "mlm": 201_108_230,
    "audioset": 16_340_273,  # no published counterpart
}

_IMAGENET = dict(
    num_latents=512,
    d_latents=1024,
    num_blocks=8,
    num_self_attends_per_block=6,
    num_cross_attention_heads=1,
    num_self_attention_heads=8,
    num_labels=1000,
    image_size=224,
)
# config name -> (transformers class, PerceiverConfig arguments)
HF_MODELS = {
    "imagenet_fourier": ("PerceiverForImageClassificationFourier", dict(_IMAGENET, d_model=261)),
    "imagenet_learned": ("PerceiverForImageClassificationLearned", dict(_IMAGENET, d_model=512)),
    "imagenet_conv": (
        "PerceiverForImageClassificationConvProcessing",
        dict(_IMAGENET, d_model=322),
    ),
    "optical_flow": (
        "PerceiverForOpticalFlow",
        dict(
            num_latents=2048,
            d_latents=512,
            d_model=322,
            num_self_attends_per_block=24,
            num_self_attention_heads=16,
            num_cross_attention_heads=1,
        ),
    ),
    "kinetics_autoencoder": (
        "PerceiverForMultimodalAutoencoding",
        dict(
            num_latents=784,
            d_latents=512,
            d_model=704,
            num_self_attends_per_block=8,
            num_self_attention_heads=8,
            num_cross_attention_heads=1,
            num_labels=700,
            image_size=224,
            output_shape=[1, 16, 224, 224],
        ),
    ),
    "mlm": ("PerceiverForMaskedLM", dict(qk_channels=256, v_channels=1280)),
}


def test_shipped_configs_are_found_and_packaged():
    assert set(PAPER) == set(PAPER_PARAMETERS)
    assert {"tiny_image", "tiny_audio", "tiny_video", "tiny_point_cloud", "tiny_multimodal"} <= set(
        TINY
    )


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_config_loads_and_validates(name):
    config = load_task_config(CONFIGS[name])
    assert config.model_dump()["task"] == config.task  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", PAPER)
def test_paper_configs_have_the_papers_sizes(name):
    config = load_task_config(CONFIGS[name])
    with torch.device("meta"):
        model = build(config)
    assert num_parameters(model) == PAPER_PARAMETERS[name]


@pytest.mark.parametrize("name", sorted(HF_MODELS))
def test_paper_sizes_equal_transformers_models(name):
    transformers = pytest.importorskip("transformers")
    class_name, kwargs = HF_MODELS[name]
    with torch.device("meta"):
        theirs = getattr(transformers, class_name)(transformers.PerceiverConfig(**kwargs))
    assert num_parameters(theirs) == PAPER_PARAMETERS[name]


def _tiny_inputs(config) -> tuple:
    task = config.task
    if task == "image_classification":
        return (torch.randint(0, 256, (2, *config.image_shape), dtype=torch.uint8),)
    if task == "audio_classification":
        return (torch.randn(2, config.num_samples),)
    if task == "video_classification":
        return (torch.rand(2, *config.video_shape),)
    if task == "point_cloud_classification":
        return (torch.rand(2, 30, 3) * 2 - 1,)
    if task == "masked_language_modeling":
        return (torch.randint(0, config.vocab_size, (2, config.max_seq_len)),)
    if task == "optical_flow":
        return (torch.randn(2, *config.frames_shape),)
    if task == "multimodal_autoencoding":
        return (
            {
                "audio": torch.randn(2, config.num_audio_samples),
                "image": torch.rand(2, *config.video_shape),
                "label": torch.zeros(2, config.num_classes),
            },
        )
    raise AssertionError(f"no inputs for {task}")


@pytest.mark.parametrize("name", TINY)
def test_tiny_configs_build_and_run(name):
    config = load_task_config(CONFIGS[name])
    torch.manual_seed(0)
    model = PortableModel(config)
    out = model(*_tiny_inputs(config))
    values = out.values() if isinstance(out, dict) else [out]
    loss = sum(v.float().square().mean() for v in values)
    loss.backward()
    assert torch.isfinite(loss)


def test_loader_rejects_unknown_tasks_and_non_mappings(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: segmentation\n")
    with pytest.raises(ValueError, match="unknown task 'segmentation'"):
        load_task_config(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        load_task_config(bad)
