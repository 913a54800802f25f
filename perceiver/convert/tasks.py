"""One reader per Hugging Face task class, and the conversion itself.

A reader turns an instantiated ``transformers`` Perceiver into our task config and the
``ModuleMap`` of its weights; ``from_transformers_with_config`` builds our model from that
config alone (``perceiver.builders``) and copies every weight (``perceiver.convert.weights``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from perceiver.builders import build
from perceiver.config import (
    AnyTaskConfig,
    ImageClassifierConfig,
    MaskedLMConfig,
    OpticalFlowConfig,
    SequenceClassifierConfig,
)
from perceiver.convert.adapters import (
    HF_IMAGE,
    conv1x1_fields,
    conv_fields,
    flow_fields,
    pixels_fields,
    text_fields,
)
from perceiver.convert.blocks import (
    encoder_input_channels,
    read_classification_decoder,
    read_encoder,
    read_flow_decoder,
    read_masked_lm_decoder,
    require,
)
from perceiver.convert.multimodal import CLASS_NAME as MULTIMODAL_CLASS
from perceiver.convert.multimodal import read_multimodal
from perceiver.convert.weights import ModuleMap, copy_weights

ConfigReader = Callable[[Any, Any], tuple[AnyTaskConfig, ModuleMap]]
"""(hf_model, image_size) -> (our task config, module map)."""


def _with_encoder(
    hf_model: Any, adapter: tuple[dict[str, Any], ModuleMap], decoder: tuple[Any, ModuleMap]
) -> tuple[dict[str, Any], ModuleMap]:
    """Config fields and module map of adapter + encoder + decoder."""
    (fields, adapter_modules), (dec, decoder_modules) = adapter, decoder
    enc, encoder_modules = read_encoder(hf_model)
    return (
        {**fields, "encoder": enc, "decoder": dec},
        adapter_modules | encoder_modules | decoder_modules,
    )


def _classifier(config_class: Any, adapter_fields: Any) -> ConfigReader:
    """A reader of a classifier whose adapter ``adapter_fields(hf_model, image_size)`` reads."""

    def read(hf_model: Any, image_size: Any) -> tuple[AnyTaskConfig, ModuleMap]:
        dec, num_classes, decoder_modules = read_classification_decoder(hf_model)
        fields, modules = _with_encoder(
            hf_model, adapter_fields(hf_model, image_size), (dec, decoder_modules)
        )
        config: AnyTaskConfig = config_class(num_classes=num_classes, **fields)
        return config, modules

    return read


def _image_fields(reader: Any) -> Any:
    """Hugging Face image models take channels-first, un-normalised float images."""

    def read(hf_model: Any, image_size: Any) -> tuple[dict[str, Any], ModuleMap]:
        fields, modules = reader(hf_model, image_size)
        return {**fields, **HF_IMAGE}, modules

    return read


def _masked_lm(hf_model: Any, image_size: Any) -> tuple[AnyTaskConfig, ModuleMap]:
    fields, modules = _with_encoder(
        hf_model, text_fields(hf_model), read_masked_lm_decoder(hf_model)
    )
    return MaskedLMConfig(**fields), modules


def _optical_flow(hf_model: Any, image_size: Any) -> tuple[AnyTaskConfig, ModuleMap]:
    fields, modules = _with_encoder(hf_model, flow_fields(hf_model), read_flow_decoder(hf_model))
    return OpticalFlowConfig(**fields), modules


def _multimodal(hf_model: Any, image_size: Any) -> tuple[AnyTaskConfig, ModuleMap]:
    return read_multimodal(hf_model, image_size, read_encoder)


_IMAGE_READERS: dict[str, ConfigReader] = {
    "PerceiverForImageClassificationFourier": _classifier(
        ImageClassifierConfig, _image_fields(pixels_fields)
    ),
    "PerceiverForImageClassificationLearned": _classifier(
        ImageClassifierConfig, _image_fields(conv1x1_fields)
    ),
    "PerceiverForImageClassificationConvProcessing": _classifier(
        ImageClassifierConfig, _image_fields(conv_fields)
    ),
}
_READERS: dict[str, ConfigReader] = {
    **_IMAGE_READERS,
    "PerceiverForMaskedLM": _masked_lm,
    "PerceiverForSequenceClassification": _classifier(
        SequenceClassifierConfig, lambda hf_model, _: text_fields(hf_model)
    ),
    "PerceiverForOpticalFlow": _optical_flow,
    MULTIMODAL_CLASS: _multimodal,
}
ALL_SUPPORTED_CLASSES = tuple(_READERS)
SUPPORTED_CLASSES = tuple(name for name in _READERS if name != MULTIMODAL_CLASS)
"""The classes taking one tensor (what ``perceiver-pipeline convert`` checks on its own)."""


def from_transformers_with_config(
    hf_model: nn.Module, image_size: int | tuple[int, int] | None = None
) -> tuple[AnyTaskConfig, nn.Module]:
    """``(config, model)``: the task config describing ``hf_model`` and the converted model.

    ``model`` is built by the task's builder from ``config`` alone, then given ``hf_model``'s
    weights, so ``PortableModel(config, model.state_dict())`` is the same model. See
    ``from_transformers`` for inputs and outputs.
    """
    name = type(hf_model).__name__
    reader = _READERS.get(name)
    if reader is None:
        raise ValueError(
            f"unsupported transformers model class {name!r}; supported: "
            f"{', '.join(ALL_SUPPORTED_CLASSES)}"
        )
    if image_size is not None and name not in _IMAGE_READERS:
        raise ValueError(f"image_size={image_size!r} only applies to image models, not {name}")
    config, modules = reader(hf_model, image_size)
    model = build(config)
    adapter: Any = model.get_submodule("encoder.input_adapter")
    expected = encoder_input_channels(hf_model)
    require(
        expected == adapter.num_input_channels,
        f"encoder cross-attention expects {expected} input channels, the converted "
        f"adapter gives {adapter.num_input_channels}",
    )
    copy_weights(model, hf_model, modules)
    reference = next(hf_model.parameters())
    model.to(device=reference.device, dtype=reference.dtype)
    return config, model.train(hf_model.training)


def from_transformers(
    hf_model: nn.Module, image_size: int | tuple[int, int] | None = None
) -> nn.Module:
    """This package's equivalent of a ``transformers`` Perceiver model, with its weights.

    Supported classes: ``ALL_SUPPORTED_CLASSES``; any other raises a ValueError naming it.
    Image models take (B, C, H, W) float images of ``image_size`` (default
    ``config.image_size``; the learned-position model needs exactly that size) and return
    (B, num_labels) logits. ``PerceiverForMaskedLM`` takes (B, N) token ids (N <=
    ``max_position_embeddings``) and returns (B, max_position_embeddings, vocab_size) logits,
    as Hugging Face does; ``PerceiverForSequenceClassification`` returns (B, num_labels). Text
    models accept ``attention_mask=`` (1 = token, 0 = padding) or ``pad_mask=``.

    ``PerceiverForOpticalFlow`` becomes a model of raw frame pairs, as DeepMind's: it takes
    (B, 2, H, W, 3) uint8 frames ((H, W) = ``config.train_size``), builds the 3x3 patches that
    Hugging Face expects as its input itself, and returns (B, H, W, 2) flow in pixels, which
    is Hugging Face's ``.logits`` times 20 (DeepMind's flow scale). Hugging Face's input is
    ``perceiver.adapters.extract_flow_patches(frames / 255 * 2 - 1)``.

    ``PerceiverForMultimodalAutoencoding`` becomes a ``MultimodalAutoencoder`` taking the
    same dict inputs and ``subsampled_output_points=`` (or ``output_indices=``), returning the
    same dict (see ``perceiver.convert.multimodal``).

    The result is in the same train/eval mode, dtype and device as ``hf_model``;
    ``from_transformers_with_config`` also returns the task config that describes it.
    """
    return from_transformers_with_config(hf_model, image_size)[1]
