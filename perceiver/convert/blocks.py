"""Read a Hugging Face Perceiver's encoder and decoders into our configs and module maps.

Each reader returns our config section (``perceiver.config``) and the ``ModuleMap`` from our
module prefixes to Hugging Face's (``perceiver.convert.weights``). Architecture is read from
the Hugging Face modules, not re-derived from its config, so the conversion follows whatever
widths the instance actually has.
"""

from __future__ import annotations

from typing import Any

from perceiver.config import (
    ClassificationDecoderConfig,
    EncoderConfig,
    FlowDecoderConfig,
    MaskedLMDecoderConfig,
)
from perceiver.convert.weights import ModuleMap, layer_map


def require(ok: bool, message: str) -> None:
    """ValueError(message) unless ``ok``: what a checkpoint has that we cannot convert."""
    if not ok:
        raise ValueError(message)


def layer_dims(layer: Any) -> dict[str, Any]:
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


def cross_attention_fields(hf_model: Any, layer: Any) -> dict[str, Any]:
    """Our ``CrossAttentionConfig`` fields of a Hugging Face cross-attention layer.

    Hugging Face drops out attention probabilities only (``attention_probs_dropout_prob``),
    so ``dropout`` (after the MLP) is 0.
    """
    dims = layer_dims(layer)
    return {
        "num_cross_attention_heads": dims["num_heads"],
        "num_cross_attention_qk_channels": dims["qk"],
        "num_cross_attention_v_channels": dims["v"],
        "cross_attention_widening_factor": dims["widening"],
        "query_residual": dims["query_residual"],
        "dropout": 0.0,
        "attention_dropout": float(hf_model.config.attention_probs_dropout_prob),
    }


def read_encoder(hf_model: Any) -> tuple[EncoderConfig, ModuleMap]:
    config = hf_model.config
    require(
        config.hidden_act == "gelu",
        f"hidden_act={config.hidden_act!r} is not supported (only 'gelu')",
    )
    hf_encoder = hf_model.perceiver.encoder
    layers = [layer_dims(layer) for layer in hf_encoder.self_attends]
    require(len(layers) >= 1, "num_self_attends_per_block=0 is not supported")
    require(
        all(dims == layers[0] for dims in layers),
        "the latent self-attention layers differ in width",
    )
    latents = hf_model.perceiver.embeddings.latents  # (L, C)
    num_latents, num_latent_channels = latents.shape
    self_dims = layers[0]
    require(
        self_dims["v"] == num_latent_channels,
        f"self-attention v_channels={self_dims['v']} must equal d_latents={num_latent_channels}",
    )
    encoder = EncoderConfig(
        **cross_attention_fields(hf_model, hf_encoder.cross_attention),
        num_latents=num_latents,
        num_latent_channels=num_latent_channels,
        num_self_attention_heads=self_dims["num_heads"],
        num_self_attention_layers_per_block=len(layers),
        num_self_attention_blocks=config.num_blocks,
        self_attention_widening_factor=self_dims["widening"],
        num_self_attention_qk_channels=self_dims["qk"],
        num_self_attention_v_channels=self_dims["v"],
    )
    hf = "perceiver.encoder"
    modules = layer_map("encoder.cross_attention", f"{hf}.cross_attention", cross=True)
    for i in range(len(layers)):
        modules |= layer_map(f"encoder.self_attention.{i}", f"{hf}.self_attends.{i}", cross=False)
    modules["encoder.latents"] = "perceiver.embeddings.latents"
    return encoder, modules


def encoder_input_channels(hf_model: Any) -> int:
    return int(hf_model.perceiver.encoder.cross_attention.attention.self.key.in_features)


def _decoder_modules(hf: str) -> ModuleMap:
    """Our decoder's cross-attention and head from a ``PerceiverBasicDecoder`` at ``hf``."""
    modules = layer_map("decoder.cross_attention", f"{hf}.decoding_cross_attention", cross=True)
    modules["decoder.head"] = f"{hf}.final_layer"
    return modules


def read_classification_decoder(
    hf_model: Any,
) -> tuple[ClassificationDecoderConfig, int, ModuleMap]:
    """The decoder config, the number of classes and the module map."""
    hf_decoder = hf_model.perceiver.decoder.decoder  # PerceiverBasicDecoder
    require(
        hf_decoder.position_encoding_type == "trainable" and hf_decoder.final_project,
        "the classification decoder must have a trainable query and a final projection",
    )
    layer = hf_decoder.decoding_cross_attention
    decoder = ClassificationDecoderConfig(
        num_output_query_channels=layer_dims(layer)["q_dim"],
        **cross_attention_fields(hf_model, layer),
    )
    hf = "perceiver.decoder.decoder"
    modules = _decoder_modules(hf)
    modules["decoder.output_query.table"] = f"{hf}.output_position_encodings.position_embeddings"
    return decoder, int(hf_decoder.final_layer.out_features), modules


def read_masked_lm_decoder(hf_model: Any) -> tuple[MaskedLMDecoderConfig, ModuleMap]:
    hf_decoder = hf_model.perceiver.decoder  # PerceiverBasicDecoder
    require(
        hf_decoder.position_encoding_type == "trainable" and not hf_decoder.final_project,
        "the masked-LM decoder must have trainable queries and no final projection",
    )
    require(
        not list(hf_decoder.positions_projection.parameters()),
        "projected masked-LM decoder queries are not supported",
    )
    layer = hf_decoder.decoding_cross_attention
    table = hf_decoder.output_position_encodings.position_embeddings  # (N_out, C_q)
    decoder = MaskedLMDecoderConfig(
        num_output_positions=table.shape[0],
        num_output_query_channels=layer_dims(layer)["q_dim"],
        **cross_attention_fields(hf_model, layer),
    )
    hf = "perceiver.decoder"
    modules = layer_map("decoder.cross_attention", f"{hf}.decoding_cross_attention", cross=True)
    modules["decoder.output_query.table"] = f"{hf}.output_position_encodings.position_embeddings"
    modules["decoder.head.embedding"] = "perceiver.input_preprocessor.embeddings"
    modules["decoder.head.bias"] = "embedding_decoder.bias"
    return decoder, modules


def read_flow_decoder(hf_model: Any) -> tuple[FlowDecoderConfig, ModuleMap]:
    """The flow decoder; ``flow_scale_factor`` keeps DeepMind's 20, so the converted model
    returns pixels where Hugging Face's ``.logits`` are the flow / 20."""
    hf_flow = hf_model.perceiver.decoder  # PerceiverOpticalFlowDecoder
    hf_decoder = hf_flow.decoder  # PerceiverBasicDecoder
    require(hf_decoder.final_project, "an optical-flow decoder without final projection")
    decoder = FlowDecoderConfig(
        num_output_channels=hf_decoder.final_layer.out_features,
        rescale_factor=float(hf_flow.rescale_factor),
        **cross_attention_fields(hf_model, hf_decoder.decoding_cross_attention),
    )
    return decoder, _decoder_modules("perceiver.decoder.decoder")
