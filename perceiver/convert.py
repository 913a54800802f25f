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

The library never imports ``transformers``: models are recognised by class name and read
through their attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from perceiver.adapters.base import InputAdapter
from perceiver.adapters.frame_stack import FrameStackInputAdapter
from perceiver.adapters.image import ImageInputAdapter
from perceiver.adapters.image_variants import Conv1x1ImageInputAdapter, ConvImageInputAdapter
from perceiver.adapters.text import TextInputAdapter
from perceiver.attention import MultiHeadAttention
from perceiver.convert_weights import ModuleMap, copy_weights, layer_map
from perceiver.decoders.basic import BasicDecoder
from perceiver.decoders.classification import ClassificationDecoder
from perceiver.decoders.input_query import InputQueryDecoder
from perceiver.decoders.tied_embedding import TiedEmbeddingHead
from perceiver.encoder import PerceiverEncoder
from perceiver.input_query_model import InputQueryPerceiverIO
from perceiver.model import PerceiverIO
from perceiver.position import (
    PositionEncoding,
    ProjectedPositionEncoding,
    TrainablePositionEncoding,
)
from perceiver.text_model import TextPerceiverIO


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


# -- encoder ---------------------------------------------------------------------------


def _encoder(hf_model: Any, adapter: InputAdapter) -> tuple[PerceiverEncoder, ModuleMap]:
    config = hf_model.config
    _require(
        config.hidden_act == "gelu",
        f"hidden_act={config.hidden_act!r} is not supported (only 'gelu')",
    )
    hf_encoder = hf_model.perceiver.encoder
    cross = _layer_dims(hf_encoder.cross_attention)
    _require(
        cross["kv_dim"] == adapter.num_input_channels,
        f"encoder cross-attention expects {cross['kv_dim']} input channels, the converted "
        f"adapter gives {adapter.num_input_channels}",
    )
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
    encoder = PerceiverEncoder(
        input_adapter=adapter,
        num_latents=num_latents,
        num_latent_channels=num_latent_channels,
        num_cross_attention_heads=cross["num_heads"],
        num_self_attention_heads=self_dims["num_heads"],
        num_self_attention_layers_per_block=len(layers),
        num_self_attention_blocks=config.num_blocks,
        cross_attention_widening_factor=cross["widening"],
        self_attention_widening_factor=self_dims["widening"],
        num_cross_attention_qk_channels=cross["qk"],
        num_cross_attention_v_channels=cross["v"],
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


# -- decoders --------------------------------------------------------------------------


def _classification_decoder(hf_model: Any) -> tuple[ClassificationDecoder, ModuleMap]:
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
    decoder = ClassificationDecoder(
        num_classes=hf_decoder.final_layer.out_features,
        num_latent_channels=dims["kv_dim"],
        num_output_query_channels=dims["q_dim"],
        num_cross_attention_heads=dims["num_heads"],
        cross_attention_widening_factor=dims["widening"],
    )
    hf = "perceiver.decoder.decoder"
    modules = layer_map("decoder.cross_attention", f"{hf}.decoding_cross_attention", cross=True)
    modules["decoder.output_query.table"] = f"{hf}.output_position_encodings.position_embeddings"
    modules["decoder.head"] = f"{hf}.final_layer"
    return decoder, modules


def _masked_lm_decoder(hf_model: Any, adapter: TextInputAdapter) -> tuple[BasicDecoder, ModuleMap]:
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
    decoder = BasicDecoder(
        num_output_channels=adapter.vocab_size,
        num_latent_channels=dims["kv_dim"],
        output_index_shape=(table.shape[0],),
        query_type="trainable",
        num_output_query_channels=dims["q_dim"],
        num_cross_attention_heads=dims["num_heads"],
        num_cross_attention_qk_channels=dims["qk"],
        num_cross_attention_v_channels=dims["v"],
        cross_attention_widening_factor=dims["widening"],
        query_residual=dims["query_residual"],
        head=TiedEmbeddingHead(adapter.token_embedding),
    )
    hf = "perceiver.decoder"
    modules = layer_map("decoder.cross_attention", f"{hf}.decoding_cross_attention", cross=True)
    modules["decoder.output_query.table"] = f"{hf}.output_position_encodings.position_embeddings"
    modules["decoder.head.embedding"] = "perceiver.input_preprocessor.embeddings"
    modules["decoder.head.bias"] = "embedding_decoder.bias"
    return decoder, modules


# -- input adapters --------------------------------------------------------------------


def _image_shape(hf_model: Any, image_size: int | tuple[int, int] | None) -> tuple[int, int, int]:
    size = hf_model.config.image_size if image_size is None else image_size
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return height, width, hf_model.perceiver.input_preprocessor.in_channels


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


def _fourier_kwargs(pre: Any) -> dict[str, Any]:
    """Our adapters' Fourier options from a Hugging Face preprocessor without projection."""
    fourier = pre.position_embeddings
    _require(
        fourier.concat_pos and not fourier.sine_only and pre.project_pos_dim <= 0,
        f"Fourier positions with concat_pos={fourier.concat_pos}, sine_only={fourier.sine_only}, "
        f"project_pos_dim={pre.project_pos_dim} are not supported",
    )
    return {"num_frequency_bands": fourier.num_bands, "max_resolution": fourier.max_resolution}


def _pixels_adapter(hf_model: Any, image_size: Any) -> tuple[InputAdapter, ModuleMap]:
    pre = _image_preprocessor(hf_model, "pixels", "fourier")
    adapter = ImageInputAdapter(
        _image_shape(hf_model, image_size),
        mean=None,
        std=None,
        channels_first=True,
        **_fourier_kwargs(pre),
    )
    return adapter, {}


def _conv1x1_adapter(hf_model: Any, image_size: Any) -> tuple[InputAdapter, ModuleMap]:
    pre = _image_preprocessor(hf_model, "conv1x1", "trainable")
    conv = pre.convnet_1x1
    _require(tuple(conv.stride) == (1, 1), f"conv1x1 stride {tuple(conv.stride)} is not supported")
    table = pre.position_embeddings.position_embeddings  # (N, C_pos)
    position_encoding: PositionEncoding = TrainablePositionEncoding(*table.shape)
    hf = "perceiver.input_preprocessor"
    modules: ModuleMap
    if pre.project_pos_dim > 0:
        position_encoding = ProjectedPositionEncoding(position_encoding, pre.project_pos_dim)
        modules = {
            "encoder.input_adapter.position_encoding.encoding.table": (
                f"{hf}.position_embeddings.position_embeddings"
            ),
            "encoder.input_adapter.position_encoding.projection": f"{hf}.positions_projection",
        }
    else:
        modules = {
            "encoder.input_adapter.position_encoding.table": (
                f"{hf}.position_embeddings.position_embeddings"
            )
        }
    adapter = Conv1x1ImageInputAdapter(
        _image_shape(hf_model, image_size),
        None,
        num_output_channels=conv.out_channels,
        mean=None,
        std=None,
        channels_first=True,
        position_encoding=position_encoding,
    )
    modules["encoder.input_adapter.conv1x1"] = f"{hf}.convnet_1x1"
    return adapter, modules


def _conv_adapter(hf_model: Any, image_size: Any) -> tuple[InputAdapter, ModuleMap]:
    pre = _image_preprocessor(hf_model, "conv", "fourier")
    convnet = pre.convnet
    _require(
        isinstance(convnet.batchnorm, nn.BatchNorm2d),
        "conv preprocessing without batchnorm is not supported",
    )
    adapter = ConvImageInputAdapter(
        _image_shape(hf_model, image_size),
        num_output_channels=convnet.conv.out_channels,
        use_batchnorm=True,
        pool_padding=0,
        mean=None,
        std=None,
        channels_first=True,
        **_fourier_kwargs(pre),
    )
    adapter.norm.eps, adapter.norm.momentum = convnet.batchnorm.eps, convnet.batchnorm.momentum
    hf = "perceiver.input_preprocessor.convnet"
    return adapter, {
        "encoder.input_adapter.conv": f"{hf}.conv",
        "encoder.input_adapter.norm": f"{hf}.batchnorm",
    }


def _text_adapter(hf_model: Any) -> tuple[TextInputAdapter, ModuleMap]:
    pre = hf_model.perceiver.input_preprocessor
    vocab_size, num_channels = pre.embeddings.weight.shape
    adapter = TextInputAdapter(vocab_size, pre.position_embeddings.num_embeddings, num_channels)
    hf = "perceiver.input_preprocessor"
    return adapter, {
        "encoder.input_adapter.token_embedding": f"{hf}.embeddings",
        "encoder.input_adapter.position_encoding.table": f"{hf}.position_embeddings.weight",
    }


def _frame_stack_adapter(hf_model: Any) -> tuple[InputAdapter, ModuleMap]:
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
    adapter = FrameStackInputAdapter(
        (frames, projection.in_features // frames, height, width),
        num_output_channels=projection.out_features,
        **_fourier_kwargs(pre),
    )
    return adapter, {
        "encoder.input_adapter.projection": "perceiver.input_preprocessor.conv_after_patches"
    }


def _flow_decoder(hf_model: Any) -> tuple[InputQueryDecoder, ModuleMap]:
    hf_flow = hf_model.perceiver.decoder  # PerceiverOpticalFlowDecoder
    hf_decoder = hf_flow.decoder  # PerceiverBasicDecoder
    _require(hf_decoder.final_project, "an optical-flow decoder without final projection")
    dims = _layer_dims(hf_decoder.decoding_cross_attention)
    decoder = InputQueryDecoder(
        num_output_channels=hf_decoder.final_layer.out_features,
        num_latent_channels=dims["kv_dim"],
        num_query_channels=dims["q_dim"],
        output_index_shape=tuple(hf_flow.output_image_shape),
        num_cross_attention_heads=dims["num_heads"],
        num_cross_attention_qk_channels=dims["qk"],
        num_cross_attention_v_channels=dims["v"],
        cross_attention_widening_factor=dims["widening"],
        query_residual=dims["query_residual"],
        rescale_factor=hf_flow.rescale_factor,
    )
    hf = "perceiver.decoder.decoder"
    modules = layer_map("decoder.cross_attention", f"{hf}.decoding_cross_attention", cross=True)
    modules["decoder.head"] = f"{hf}.final_layer"
    return decoder, modules


# -- per-class builders ----------------------------------------------------------------


def _image_classifier(
    adapter_fn: Callable[[Any, Any], tuple[InputAdapter, ModuleMap]],
) -> Callable[[Any, Any], tuple[nn.Module, ModuleMap]]:
    def build(hf_model: Any, image_size: Any) -> tuple[nn.Module, ModuleMap]:
        adapter, adapter_modules = adapter_fn(hf_model, image_size)
        encoder, encoder_modules = _encoder(hf_model, adapter)
        decoder, decoder_modules = _classification_decoder(hf_model)
        return PerceiverIO(encoder, decoder), adapter_modules | encoder_modules | decoder_modules

    return build


def _masked_lm(hf_model: Any, image_size: Any) -> tuple[nn.Module, ModuleMap]:
    adapter, adapter_modules = _text_adapter(hf_model)
    encoder, encoder_modules = _encoder(hf_model, adapter)
    decoder, decoder_modules = _masked_lm_decoder(hf_model, adapter)
    return TextPerceiverIO(encoder, decoder), adapter_modules | encoder_modules | decoder_modules


def _sequence_classifier(hf_model: Any, image_size: Any) -> tuple[nn.Module, ModuleMap]:
    adapter, adapter_modules = _text_adapter(hf_model)
    encoder, encoder_modules = _encoder(hf_model, adapter)
    decoder, decoder_modules = _classification_decoder(hf_model)
    return TextPerceiverIO(encoder, decoder), adapter_modules | encoder_modules | decoder_modules


def _optical_flow(hf_model: Any, image_size: Any) -> tuple[nn.Module, ModuleMap]:
    adapter, adapter_modules = _frame_stack_adapter(hf_model)
    encoder, encoder_modules = _encoder(hf_model, adapter)
    decoder, decoder_modules = _flow_decoder(hf_model)
    model = InputQueryPerceiverIO(encoder, decoder)
    return model, adapter_modules | encoder_modules | decoder_modules


_BUILDERS: dict[str, Callable[[Any, Any], tuple[nn.Module, ModuleMap]]] = {
    "PerceiverForImageClassificationFourier": _image_classifier(_pixels_adapter),
    "PerceiverForImageClassificationLearned": _image_classifier(_conv1x1_adapter),
    "PerceiverForImageClassificationConvProcessing": _image_classifier(_conv_adapter),
    "PerceiverForMaskedLM": _masked_lm,
    "PerceiverForSequenceClassification": _sequence_classifier,
    "PerceiverForOpticalFlow": _optical_flow,
}
SUPPORTED_CLASSES = tuple(_BUILDERS)
_IMAGE_CLASSES = SUPPORTED_CLASSES[:3]


def from_transformers(
    hf_model: nn.Module, image_size: int | tuple[int, int] | None = None
) -> nn.Module:
    """This package's equivalent of a ``transformers`` Perceiver model, with its weights.

    Supported classes: ``SUPPORTED_CLASSES``; any other raises a ValueError naming it.
    Image models take (B, C, H, W) float images of ``image_size`` (default
    ``config.image_size``; the learned-position model needs exactly that size) and return
    (B, num_labels) logits. ``PerceiverForMaskedLM`` takes (B, N) token ids (N <=
    ``max_position_embeddings``) and returns (B, max_position_embeddings, vocab_size) logits,
    as Hugging Face does; ``PerceiverForSequenceClassification`` returns (B, num_labels). Text
    models accept ``attention_mask=`` (1 = token, 0 = padding) or ``pad_mask=``.
    ``PerceiverForOpticalFlow`` takes (B, 2, 27, H, W) frame pairs with (H, W) =
    ``config.train_size`` and returns (B, H, W, 2) flow. ``PerceiverForMultimodalAutoencoding``
    (dict inputs, subsampled decoding) is not supported.

    The result is in the same train/eval mode, dtype and device as ``hf_model``.
    """
    name = type(hf_model).__name__
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ValueError(
            f"unsupported transformers model class {name!r}; supported: "
            f"{', '.join(SUPPORTED_CLASSES)}"
        )
    if image_size is not None and name not in _IMAGE_CLASSES:
        raise ValueError(f"image_size={image_size!r} only applies to image models, not {name}")
    model, modules = builder(hf_model, image_size)
    copy_weights(model, hf_model, modules)
    config: Any = getattr(hf_model, "config", None)
    dropout = float(config.attention_probs_dropout_prob)
    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            module.dropout = dropout  # on attention probabilities, as Hugging Face does
    reference = next(hf_model.parameters())
    model.to(device=reference.device, dtype=reference.dtype)
    return model.train(hf_model.training)


__all__ = ["SUPPORTED_CLASSES", "from_transformers"]
