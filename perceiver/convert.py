"""Convert Hugging Face ``transformers`` Perceiver models into this package's modules.

``from_transformers(hf_model)`` reads an instantiated ``transformers`` Perceiver model (any
weights: pretrained or random), builds the same architecture from this package's blocks and
copies every weight. The returned model takes the tensor the Hugging Face model takes as
``inputs`` (text models also ``attention_mask=``) and returns what it returns as ``.logits``.

Architecture is read from the Hugging Face modules, not re-derived from the config, so the
conversion follows whatever widths the instance actually has. How the two implementations
line up:

- ``PerceiverLayer`` = our ``CrossAttentionLayer`` (cross-attention: ``layernorm1`` on the
  queries, ``layernorm2`` on the keys/values) or ``SelfAttentionLayer`` (``layernorm1`` only);
  ``attention.output.dense`` is the output projection, ``layernorm`` + ``mlp`` the MLP. Both
  scale scores by 1/sqrt(head width) and use exact GELU; Hugging Face's additive
  -inf-like attention mask becomes a boolean pad mask.
- Hugging Face drops out attention probabilities only (``attention_probs_dropout_prob``);
  the converted model does the same (SDPA ``dropout_p``) and has no MLP dropout.
- Image models take channels-first, un-normalised float images: their adapters are built
  with ``channels_first=True`` and no mean/std.
- Optical flow decodes with the adapted inputs as queries (``InputQueryPerceiverIO`` with an
  ``InputQueryDecoder``).

Every conversion is described by one of this package's task configs
(``perceiver.config``): ``from_transformers_with_config`` returns that config with the model,
which is built from the config alone by the task's builder (``perceiver.builders``), so
``PortableModel(config, model.state_dict())`` rebuilds it anywhere. ``save_converted`` /
``load_converted`` store a conversion as ``config.json`` + ``model.safetensors``.

The library never imports ``transformers``: models are recognised by class name and read
through their attributes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from perceiver.config import (
    ClassificationDecoderConfig,
    EncoderConfig,
    ImageClassifierConfig,
    InputQueryDecoderConfig,
    MaskedLMConfig,
    MaskedLMDecoderConfig,
    OpticalFlowConfig,
    SequenceClassifierConfig,
    TaskConfig,
)
from perceiver.config_multimodal import MultimodalAutoencoderConfig
from perceiver.convert_multimodal import CLASS_NAME as MULTIMODAL_CLASS
from perceiver.convert_multimodal import read_multimodal
from perceiver.convert_weights import ModuleMap, copy_weights, layer_map
from perceiver.portable import PortableModel, build, config_from_dict

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def _layer_dims(layer: Any) -> dict[str, Any]:
    """Widths of a Hugging Face ``PerceiverLayer``."""
    attention = layer.attention.self
    dense1 = layer.mlp.dense1
    return {
        "num_heads": attention.num_heads,
        "qk": attention.qk_channels,
        "v": attention.v_channels,
        "q_dim": attention.query.in_features,
        "kv_dim": attention.key.in_features,
        "widening": dense1.out_features // dense1.in_features,
        "query_residual": bool(layer.attention.use_query_residual),
    }


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _attention_dropout(hf_model: Any) -> float:
    """Hugging Face drops out attention probabilities only."""
    return float(hf_model.config.attention_probs_dropout_prob)


# -- encoder ---------------------------------------------------------------------------


def _encoder(hf_model: Any) -> tuple[EncoderConfig, ModuleMap]:
    config = hf_model.config
    _require(
        config.hidden_act == "gelu",
        f"hidden_act={config.hidden_act!r} is not supported (only 'gelu')",
    )
    hf_encoder = hf_model.perceiver.encoder
    cross = _layer_dims(hf_encoder.cross_attention)
    layers = [_layer_dims(layer) for layer in hf_encoder.self_attends]
    _require(len(layers) >= 1, "num_self_attends_per_block=0 is not supported")
    _require(
        all(dims == layers[0] for dims in layers),
        "the latent self-attention layers differ in width",
    )
    latents = hf_model.perceiver.embeddings.latents  # (L, C)
    num_latents, num_latent_channels = latents.shape
    self_dims = layers[0]
    _require(
        self_dims["v"] == num_latent_channels,
        f"self-attention v_channels={self_dims['v']} must equal d_latents={num_latent_channels}",
    )
    encoder = EncoderConfig(
        num_latents=num_latents,
        num_latent_channels=num_latent_channels,
        num_cross_attention_heads=cross["num_heads"],
        num_cross_attention_qk_channels=cross["qk"],
        num_cross_attention_v_channels=cross["v"],
        num_self_attention_heads=self_dims["num_heads"],
        num_self_attention_layers_per_block=len(layers),
        num_self_attention_blocks=config.num_blocks,
        cross_attention_widening_factor=cross["widening"],
        self_attention_widening_factor=self_dims["widening"],
        dropout=0.0,
        attention_dropout=_attention_dropout(hf_model),
        num_self_attention_qk_channels=self_dims["qk"],
        num_self_attention_v_channels=self_dims["v"],
        query_residual=cross["query_residual"],
    )
    hf = "perceiver.encoder"
    modules = layer_map("encoder.cross_attention", f"{hf}.cross_attention", cross=True)
    for i in range(len(layers)):
        modules |= layer_map(f"encoder.self_attention.{i}", f"{hf}.self_attends.{i}", cross=False)
    modules["encoder.latents"] = "perceiver.embeddings.latents"
    return encoder, modules


def _encoder_input_channels(hf_model: Any) -> int:
    return int(hf_model.perceiver.encoder.cross_attention.attention.self.key.in_features)


# -- decoders --------------------------------------------------------------------------


def _classification_decoder(
    hf_model: Any,
) -> tuple[ClassificationDecoderConfig, int, ModuleMap]:
    """The decoder config, the number of classes and the module map."""
    hf_decoder = hf_model.perceiver.decoder.decoder  # PerceiverBasicDecoder
    _require(
        hf_decoder.position_encoding_type == "trainable" and hf_decoder.final_project,
        "the classification decoder must have a trainable query and a final projection",
    )
    dims = _layer_dims(hf_decoder.decoding_cross_attention)
    _require(
        dims["qk"] == dims["q_dim"] and dims["v"] == dims["q_dim"] and dims["query_residual"],
        f"classification decoder qk={dims['qk']}, v={dims['v']}, query width={dims['q_dim']}, "
        f"query residual={dims['query_residual']}: only qk = v = query width with a residual "
        "are supported",
    )
    decoder = ClassificationDecoderConfig(
        num_output_query_channels=dims["q_dim"],
        num_cross_attention_heads=dims["num_heads"],
        cross_attention_widening_factor=dims["widening"],
        dropout=0.0,
        attention_dropout=_attention_dropout(hf_model),
    )
    hf = "perceiver.decoder.decoder"
    modules = layer_map("decoder.cross_attention", f"{hf}.decoding_cross_attention", cross=True)
    modules["decoder.output_query.table"] = f"{hf}.output_position_encodings.position_embeddings"
    modules["decoder.head"] = f"{hf}.final_layer"
    return decoder, int(hf_decoder.final_layer.out_features), modules


def _masked_lm_decoder(hf_model: Any) -> tuple[MaskedLMDecoderConfig, ModuleMap]:
    hf_decoder = hf_model.perceiver.decoder  # PerceiverBasicDecoder
    _require(
        hf_decoder.position_encoding_type == "trainable" and not hf_decoder.final_project,
        "the masked-LM decoder must have trainable queries and no final projection",
    )
    _require(
        not list(hf_decoder.positions_projection.parameters()),
        "projected masked-LM decoder queries are not supported",
    )
    dims = _layer_dims(hf_decoder.decoding_cross_attention)
    table = hf_decoder.output_position_encodings.position_embeddings  # (N_out, C_q)
    decoder = MaskedLMDecoderConfig(
        num_output_positions=table.shape[0],
        num_output_query_channels=dims["q_dim"],
        num_cross_attention_heads=dims["num_heads"],
        num_cross_attention_qk_channels=dims["qk"],
        num_cross_attention_v_channels=dims["v"],
        cross_attention_widening_factor=dims["widening"],
        query_residual=dims["query_residual"],
        dropout=0.0,
        attention_dropout=_attention_dropout(hf_model),
    )
    hf = "perceiver.decoder"
    modules = layer_map("decoder.cross_attention", f"{hf}.decoding_cross_attention", cross=True)
    modules["decoder.output_query.table"] = f"{hf}.output_position_encodings.position_embeddings"
    modules["decoder.head.embedding"] = "perceiver.input_preprocessor.embeddings"
    modules["decoder.head.bias"] = "embedding_decoder.bias"
    return decoder, modules


def _flow_decoder(hf_model: Any) -> tuple[InputQueryDecoderConfig, ModuleMap]:
    hf_flow = hf_model.perceiver.decoder  # PerceiverOpticalFlowDecoder
    hf_decoder = hf_flow.decoder  # PerceiverBasicDecoder
    _require(hf_decoder.final_project, "an optical-flow decoder without final projection")
    dims = _layer_dims(hf_decoder.decoding_cross_attention)
    decoder = InputQueryDecoderConfig(
        num_output_channels=hf_decoder.final_layer.out_features,
        num_cross_attention_heads=dims["num_heads"],
        num_cross_attention_qk_channels=dims["qk"],
        num_cross_attention_v_channels=dims["v"],
        cross_attention_widening_factor=dims["widening"],
        query_residual=dims["query_residual"],
        rescale_factor=float(hf_flow.rescale_factor),
        dropout=0.0,
        attention_dropout=_attention_dropout(hf_model),
    )
    hf = "perceiver.decoder.decoder"
    modules = layer_map("decoder.cross_attention", f"{hf}.decoding_cross_attention", cross=True)
    modules["decoder.head"] = f"{hf}.final_layer"
    return decoder, modules


# -- input adapters (as config fields) ---------------------------------------------------


def _image_shape(hf_model: Any, image_size: int | tuple[int, int] | None) -> tuple[int, int, int]:
    size = hf_model.config.image_size if image_size is None else image_size
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return int(height), int(width), int(hf_model.perceiver.input_preprocessor.in_channels)


def _image_preprocessor(hf_model: Any, prep_type: str, position_encoding_type: str) -> Any:
    pre = hf_model.perceiver.input_preprocessor
    _require(
        pre.prep_type == prep_type and pre.position_encoding_type == position_encoding_type,
        f"expected a {prep_type!r} image preprocessor with {position_encoding_type} positions, "
        f"got {pre.prep_type!r} with {pre.position_encoding_type}",
    )
    _require(
        pre.spatial_downsample == 1 and pre.concat_or_add_pos == "concat",
        f"spatial_downsample={pre.spatial_downsample} and concat_or_add_pos="
        f"{pre.concat_or_add_pos!r}: only 1 and 'concat' are supported",
    )
    return pre


def _fourier_fields(pre: Any) -> dict[str, Any]:
    """Our Fourier options from a Hugging Face preprocessor without position projection."""
    fourier = pre.position_embeddings
    _require(
        fourier.concat_pos and not fourier.sine_only and pre.project_pos_dim <= 0,
        f"Fourier positions with concat_pos={fourier.concat_pos}, sine_only={fourier.sine_only}, "
        f"project_pos_dim={pre.project_pos_dim} are not supported",
    )
    return {
        "num_frequency_bands": int(fourier.num_bands),
        "max_resolution": tuple(int(r) for r in fourier.max_resolution),
    }


# Hugging Face image models take channels-first, un-normalised float images.
_HF_IMAGE = {"normalize": False, "channels_first": True}


def _pixels_fields(hf_model: Any, image_size: Any) -> tuple[dict[str, Any], ModuleMap]:
    pre = _image_preprocessor(hf_model, "pixels", "fourier")
    fields = {"preprocessing": "pixels", **_fourier_fields(pre)}
    return {"image_shape": _image_shape(hf_model, image_size), **fields}, {}


def _conv1x1_fields(hf_model: Any, image_size: Any) -> tuple[dict[str, Any], ModuleMap]:
    pre = _image_preprocessor(hf_model, "conv1x1", "trainable")
    conv = pre.convnet_1x1
    _require(tuple(conv.stride) == (1, 1), f"conv1x1 stride {tuple(conv.stride)} is not supported")
    shape = _image_shape(hf_model, image_size)
    num_positions, num_channels = pre.position_embeddings.position_embeddings.shape  # (N, C)
    grid = shape[:2]
    _require(
        num_positions == grid[0] * grid[1],
        f"position_encoding has {num_positions} positions, the position grid {grid} has "
        f"{grid[0] * grid[1]}",
    )
    hf = "perceiver.input_preprocessor"
    ours = "encoder.input_adapter.position_encoding"
    projected = pre.project_pos_dim > 0
    table = f"{ours}.encoding.table" if projected else f"{ours}.table"
    modules = {
        table: f"{hf}.position_embeddings.position_embeddings",
        "encoder.input_adapter.conv1x1": f"{hf}.convnet_1x1",
    }
    if projected:
        modules[f"{ours}.projection"] = f"{hf}.positions_projection"
    fields = {
        "image_shape": shape,
        "preprocessing": "conv1x1",
        "num_preprocessing_channels": conv.out_channels,
        "position_encoding": "trainable",
        "num_position_channels": num_channels,
        "num_position_projection_channels": pre.project_pos_dim if projected else None,
    }
    return fields, modules


def _conv_fields(hf_model: Any, image_size: Any) -> tuple[dict[str, Any], ModuleMap]:
    pre = _image_preprocessor(hf_model, "conv", "fourier")
    convnet = pre.convnet
    norm = convnet.batchnorm
    _require(
        isinstance(norm, nn.BatchNorm2d),
        "conv preprocessing without batchnorm is not supported",
    )
    _require(
        norm.eps == 1e-5 and norm.momentum == 0.1 and norm.affine and norm.track_running_stats,
        f"batchnorm eps={norm.eps}, momentum={norm.momentum}: only PyTorch's defaults "
        "(1e-5, 0.1) are supported",
    )
    fields = {
        "image_shape": _image_shape(hf_model, image_size),
        "preprocessing": "conv",
        "num_preprocessing_channels": convnet.conv.out_channels,
        "use_batchnorm": True,
        "pool_padding": 0,
        **_fourier_fields(pre),
    }
    hf = "perceiver.input_preprocessor.convnet"
    return fields, {
        "encoder.input_adapter.conv": f"{hf}.conv",
        "encoder.input_adapter.norm": f"{hf}.batchnorm",
    }


def _text_fields(hf_model: Any) -> tuple[dict[str, Any], ModuleMap]:
    pre = hf_model.perceiver.input_preprocessor
    vocab_size, num_channels = pre.embeddings.weight.shape
    fields = {
        "vocab_size": vocab_size,
        "max_seq_len": pre.position_embeddings.num_embeddings,
        "num_input_channels": num_channels,
    }
    hf = "perceiver.input_preprocessor"
    return fields, {
        "encoder.input_adapter.token_embedding": f"{hf}.embeddings",
        "encoder.input_adapter.position_encoding.table": f"{hf}.position_embeddings.weight",
    }


def _frame_stack_fields(hf_model: Any) -> tuple[dict[str, Any], ModuleMap]:
    pre = _image_preprocessor(hf_model, "patches", "fourier")
    _require(
        pre.conv_after_patching and isinstance(pre.conv_after_patches, nn.Linear),
        "optical-flow preprocessing without conv_after_patching is not supported",
    )
    frames = pre.temporal_downsample  # all frames go into one position: (B, 1, H, W, T*C)
    projection = pre.conv_after_patches
    _require(
        projection.in_features % frames == 0,
        f"conv_after_patching_in_channels={projection.in_features} is not a multiple of "
        f"temporal_downsample={frames}",
    )
    height, width = hf_model.perceiver.decoder.output_image_shape  # inputs must match it
    fields = {
        "frames_shape": (frames, projection.in_features // frames, height, width),
        "num_preprocessing_channels": projection.out_features,
        **_fourier_fields(pre),
    }
    return fields, {
        "encoder.input_adapter.projection": "perceiver.input_preprocessor.conv_after_patches"
    }


# -- per-class configs -------------------------------------------------------------------

ConfigReader = Any  # (hf_model, image_size) -> (TaskConfig, ModuleMap)


def _image_classifier(adapter_fields: Any) -> ConfigReader:
    def read(hf_model: Any, image_size: Any) -> tuple[TaskConfig, ModuleMap]:
        fields, adapter_modules = adapter_fields(hf_model, image_size)
        encoder, encoder_modules = _encoder(hf_model)
        decoder, num_classes, decoder_modules = _classification_decoder(hf_model)
        config = ImageClassifierConfig(
            num_classes=num_classes, encoder=encoder, decoder=decoder, **_HF_IMAGE, **fields
        )
        return config, adapter_modules | encoder_modules | decoder_modules

    return read


def _masked_lm(hf_model: Any, image_size: Any) -> tuple[TaskConfig, ModuleMap]:
    fields, adapter_modules = _text_fields(hf_model)
    encoder, encoder_modules = _encoder(hf_model)
    decoder, decoder_modules = _masked_lm_decoder(hf_model)
    config = MaskedLMConfig(encoder=encoder, decoder=decoder, **fields)
    return config, adapter_modules | encoder_modules | decoder_modules


def _sequence_classifier(hf_model: Any, image_size: Any) -> tuple[TaskConfig, ModuleMap]:
    fields, adapter_modules = _text_fields(hf_model)
    encoder, encoder_modules = _encoder(hf_model)
    decoder, num_classes, decoder_modules = _classification_decoder(hf_model)
    config = SequenceClassifierConfig(
        num_classes=num_classes, encoder=encoder, decoder=decoder, **fields
    )
    return config, adapter_modules | encoder_modules | decoder_modules


def _optical_flow(hf_model: Any, image_size: Any) -> tuple[TaskConfig, ModuleMap]:
    fields, adapter_modules = _frame_stack_fields(hf_model)
    encoder, encoder_modules = _encoder(hf_model)
    decoder, decoder_modules = _flow_decoder(hf_model)
    config = OpticalFlowConfig(encoder=encoder, decoder=decoder, **fields)
    return config, adapter_modules | encoder_modules | decoder_modules


_READERS: dict[str, ConfigReader] = {
    "PerceiverForImageClassificationFourier": _image_classifier(_pixels_fields),
    "PerceiverForImageClassificationLearned": _image_classifier(_conv1x1_fields),
    "PerceiverForImageClassificationConvProcessing": _image_classifier(_conv_fields),
    "PerceiverForMaskedLM": _masked_lm,
    "PerceiverForSequenceClassification": _sequence_classifier,
    "PerceiverForOpticalFlow": _optical_flow,
}
SUPPORTED_CLASSES = tuple(_READERS)
_IMAGE_CLASSES = SUPPORTED_CLASSES[:3]
# Classes taking one tensor (what ``perceiver-pipeline convert`` can check) are
# SUPPORTED_CLASSES; from_transformers also converts the multimodal autoencoder (dict inputs).
_READERS[MULTIMODAL_CLASS] = lambda hf_model, image_size: read_multimodal(
    hf_model, image_size, _encoder
)
ALL_SUPPORTED_CLASSES = (*SUPPORTED_CLASSES, MULTIMODAL_CLASS)
AnyTaskConfig = TaskConfig | MultimodalAutoencoderConfig


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
    if image_size is not None and name not in _IMAGE_CLASSES:
        raise ValueError(f"image_size={image_size!r} only applies to image models, not {name}")
    config, modules = reader(hf_model, image_size)
    model = build(config)
    adapter: Any = model.get_submodule("encoder.input_adapter")
    expected = _encoder_input_channels(hf_model)
    _require(
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
    ``PerceiverForOpticalFlow`` takes (B, 2, 27, H, W) frame pairs with (H, W) =
    ``config.train_size`` and returns (B, H, W, 2) flow. ``PerceiverForMultimodalAutoencoding``
    becomes a ``MultimodalAutoencoder`` taking the same dict inputs and
    ``output_indices=`` (Hugging Face's ``subsampled_output_points``), returning the same dict
    (see ``perceiver.convert_multimodal``).

    The result is in the same train/eval mode, dtype and device as ``hf_model``;
    ``from_transformers_with_config`` also returns the task config that describes it.
    """
    return from_transformers_with_config(hf_model, image_size)[1]


# -- storing conversions -------------------------------------------------------------------


def _safetensors_torch() -> Any:
    try:
        import safetensors.torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValueError(
            "reading or writing model.safetensors needs the safetensors package: "
            "pip install '.[hf]' (or pip install safetensors)"
        ) from exc
    return safetensors.torch


def save_converted(out_dir: str | Path, config: AnyTaskConfig, model: nn.Module) -> None:
    """Write ``config.json`` (the task config) and ``model.safetensors`` into ``out_dir``.

    Tied weights (the masked-LM head shares the token embedding) are stored once.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
    _safetensors_torch().save_model(model, str(out / WEIGHTS_FILE))


def load_converted(out_dir: str | Path) -> PortableModel:
    """The model that ``save_converted`` (or ``perceiver-pipeline convert``) wrote, in eval mode.

    Needs ``safetensors``, not ``transformers``. The model is built from ``config.json`` by
    the task's builder and is float32 on the CPU.
    """
    out = Path(out_dir)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (out / name).is_file():
            raise ValueError(f"{out / name} not found: not a converted model folder")
    config = config_from_dict(json.loads((out / CONFIG_FILE).read_text()))
    model = PortableModel(config)
    missing, unexpected = _safetensors_torch().load_model(
        model.model, str(out / WEIGHTS_FILE), strict=False
    )
    if missing or unexpected:
        raise ValueError(
            f"{out / WEIGHTS_FILE} does not match {out / CONFIG_FILE}: missing {sorted(missing)}, "
            f"unexpected {sorted(unexpected)}"
        )
    return model.eval()


__all__ = [
    "ALL_SUPPORTED_CLASSES",
    "SUPPORTED_CLASSES",
    "from_transformers",
    "from_transformers_with_config",
    "load_converted",
    "save_converted",
]
